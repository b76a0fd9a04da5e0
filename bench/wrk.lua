-- wrk script: cycles through prebuilt signed deliveries (bench/deliveries.py).
-- Arguments (after `--`): <deliveries.lua> <run prefix> <duplicate every N>
-- Each request gets a unique webhook id "<run>-<thread>-<n>"; every Nth request
-- repeats the previous delivery with its webhook id (a duplicate). Counts the
-- answers by status and prints them as JSON with the latency percentiles.

local threads = {}
local next_thread = 1

function setup(thread)
  thread:set("thread_id", next_thread)
  next_thread = next_thread + 1
  table.insert(threads, thread)
end

function init(args)
  deliveries = dofile(args[1])
  run = args[2]
  duplicate_every = tonumber(args[3])
  sent = 0
  position = (thread_id * 7919) % #deliveries
  processed, duplicate, other_2xx, non_2xx = 0, 0, 0, 0
  previous = nil
end

function request()
  sent = sent + 1
  local delivery, webhook_id
  if previous ~= nil and sent % duplicate_every == 0 then
    delivery, webhook_id = previous.delivery, previous.webhook_id
  else
    position = position % #deliveries + 1
    delivery = deliveries[position]
    webhook_id = run .. "-" .. thread_id .. "-" .. sent
  end
  previous = { delivery = delivery, webhook_id = webhook_id }
  return wrk.format("POST", "/webhooks/shopify", {
    ["Content-Type"] = "application/json",
    ["X-Shopify-Topic"] = delivery.topic,
    ["X-Shopify-Shop-Domain"] = delivery.shop,
    ["X-Shopify-Hmac-Sha256"] = delivery.signature,
    ["X-Shopify-Webhook-Id"] = webhook_id,
    ["X-Shopify-API-Version"] = "2026-07",
  }, delivery.body)
end

function response(status, headers, body)
  if status >= 200 and status < 300 then
    if string.find(body, '"duplicate"', 1, true) then
      duplicate = duplicate + 1
    elseif string.find(body, '"status"', 1, true) then
      processed = processed + 1
    else
      other_2xx = other_2xx + 1
    end
  else
    non_2xx = non_2xx + 1
  end
end

function done(summary, latency, requests)
  local totals = { processed = 0, duplicate = 0, other_2xx = 0, non_2xx = 0 }
  for _, thread in ipairs(threads) do
    for name, _ in pairs(totals) do
      totals[name] = totals[name] + thread:get(name)
    end
  end
  local errors = summary.errors
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "accepted": %d, "duplicate": %d, ' ..
    '"other_2xx": %d, "non_2xx": %d, "socket_errors": %d, "timeouts": %d, ' ..
    '"latency_us": {"p50": %d, "p95": %d, "p99": %d, "max": %d}}\n',
    summary.requests, summary.duration, totals.processed, totals.duplicate,
    totals.other_2xx, totals.non_2xx,
    errors.connect + errors.read + errors.write, errors.timeout,
    latency:percentile(50), latency:percentile(95), latency:percentile(99), latency.max))
end
