"""Every GraphQL document the service sends to the Admin API.

Each is validated against Shopify's schema in the tests (and by the stand-in
on every call). Fields marked @deprecated in the schema are avoided: for
example `Customer.email` and `Customer.phone` give way to
`defaultEmailAddress` and `defaultPhoneNumber`, and `currentBulkOperation` to
`bulkOperation(id:)`.
"""

from __future__ import annotations

CUSTOMER_FIELDS = """
    id
    legacyResourceId
    firstName
    lastName
    defaultEmailAddress { emailAddress marketingState marketingOptInLevel marketingUpdatedAt }
    defaultPhoneNumber { phoneNumber marketingState marketingOptInLevel marketingUpdatedAt }
    tags
    createdAt
    updatedAt
"""

LINE_ITEM_FIELDS = """
    id
    name
    title
    quantity
    currentQuantity
    sku
    originalUnitPriceSet { shopMoney { amount } }
    variant { legacyResourceId }
    product { legacyResourceId }
"""

ORDER_FIELDS = """
    id
    legacyResourceId
    name
    email
    currencyCode
    totalPriceSet { shopMoney { amount } }
    currentTotalPriceSet { shopMoney { amount } }
    displayFinancialStatus
    displayFulfillmentStatus
    cancelledAt
    test
    createdAt
    updatedAt
    customer { legacyResourceId }
"""

# Incremental sync: one page of what changed since a time, oldest change first.
CUSTOMERS_PAGE = f"""
query CustomersPage($first: Int!, $after: String, $query: String!) {{
  customers(first: $first, after: $after, query: $query, sortKey: UPDATED_AT) {{
    pageInfo {{ hasNextPage endCursor }}
    nodes {{ {CUSTOMER_FIELDS} }}
  }}
}}
"""

ORDERS_PAGE = f"""
query OrdersPage($first: Int!, $after: String, $query: String!, $lineItems: Int!) {{
  orders(first: $first, after: $after, query: $query, sortKey: UPDATED_AT) {{
    pageInfo {{ hasNextPage endCursor }}
    nodes {{
      {ORDER_FIELDS}
      lineItems(first: $lineItems) {{
        pageInfo {{ hasNextPage endCursor }}
        nodes {{ {LINE_ITEM_FIELDS} }}
      }}
    }}
  }}
}}
"""

# The rest of an order's line items, when they did not fit in its page.
ORDER_LINE_ITEMS = f"""
query OrderLineItems($id: ID!, $first: Int!, $after: String) {{
  order(id: $id) {{
    lineItems(first: $first, after: $after) {{
      pageInfo {{ hasNextPage endCursor }}
      nodes {{ {LINE_ITEM_FIELDS} }}
    }}
  }}
}}
"""

# Full sync: a shop's whole history through bulk operations (the inner
# queries carry no `first`: a bulk operation reads every node).
BULK_CUSTOMERS = f"""
{{
  customers {{
    edges {{ node {{ {CUSTOMER_FIELDS} }} }}
  }}
}}
"""

BULK_ORDERS = f"""
{{
  orders {{
    edges {{
      node {{
        {ORDER_FIELDS}
        lineItems {{ edges {{ node {{ {LINE_ITEM_FIELDS} }} }} }}
      }}
    }}
  }}
}}
"""

RUN_BULK_QUERY = """
mutation RunBulkQuery($query: String!) {
  bulkOperationRunQuery(query: $query) {
    bulkOperation { id status createdAt }
    userErrors { field message }
  }
}
"""

BULK_OPERATION = """
query BulkOperation($id: ID!) {
  bulkOperation(id: $id) {
    id
    status
    errorCode
    createdAt
    completedAt
    objectCount
    url
    partialDataUrl
    query
  }
}
"""

ALL_DOCUMENTS = {
    "CUSTOMERS_PAGE": CUSTOMERS_PAGE,
    "ORDERS_PAGE": ORDERS_PAGE,
    "ORDER_LINE_ITEMS": ORDER_LINE_ITEMS,
    "BULK_CUSTOMERS": BULK_CUSTOMERS,
    "BULK_ORDERS": BULK_ORDERS,
    "RUN_BULK_QUERY": RUN_BULK_QUERY,
    "BULK_OPERATION": BULK_OPERATION,
}
