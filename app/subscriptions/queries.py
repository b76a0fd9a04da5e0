"""The Admin API documents of the subscription check (validated against the schema in tests).

`uri` is read, never the deprecated `callbackUrl` / `endpoint`.
"""

from __future__ import annotations

# 100 subscriptions a page: cost 2 + 100 x 1, far below the 1,000-point limit.
PAGE_SIZE = 100

WEBHOOK_SUBSCRIPTIONS = """
query WebhookSubscriptions($first: Int!, $after: String) {
  webhookSubscriptions(first: $first, after: $after) {
    nodes { id topic uri createdAt }
    pageInfo { hasNextPage endCursor }
  }
}
"""

WEBHOOK_SUBSCRIPTION_CREATE = """
mutation WebhookSubscriptionCreate(
  $topic: WebhookSubscriptionTopic!, $subscription: WebhookSubscriptionInput!
) {
  webhookSubscriptionCreate(topic: $topic, webhookSubscription: $subscription) {
    webhookSubscription { id topic uri createdAt }
    userErrors { field message }
  }
}
"""

ALL_DOCUMENTS = {
    "WEBHOOK_SUBSCRIPTIONS": WEBHOOK_SUBSCRIPTIONS,
    "WEBHOOK_SUBSCRIPTION_CREATE": WEBHOOK_SUBSCRIPTION_CREATE,
}
