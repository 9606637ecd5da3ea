"""The event names of Segment's e-commerce spec (v2), in one place.

Orders enter touchpoint as :data:`ORDER_COMPLETED` track events (one per ``order_id``, with
``revenue`` and ``products``); predictions, profiles, journeys, experiments and the marketing-mix
model all read them by this name. Library code uses these constants; a user still types the
names (``touchpoint journeys funnel page 'Product Added' 'Order Completed'``).

>>> ORDER_COMPLETED
'Order Completed'
>>> PRODUCT_VIEWED in BROWSING and ORDER_COMPLETED in ORDERING
True
"""

from __future__ import annotations

# Browsing
PRODUCTS_SEARCHED = "Products Searched"
PRODUCT_LIST_VIEWED = "Product List Viewed"
PRODUCT_LIST_FILTERED = "Product List Filtered"
PRODUCT_CLICKED = "Product Clicked"
PRODUCT_VIEWED = "Product Viewed"

# Promotions
PROMOTION_VIEWED = "Promotion Viewed"
PROMOTION_CLICKED = "Promotion Clicked"

# Ordering
PRODUCT_ADDED = "Product Added"
PRODUCT_REMOVED = "Product Removed"
CART_VIEWED = "Cart Viewed"
CHECKOUT_STARTED = "Checkout Started"
CHECKOUT_STEP_VIEWED = "Checkout Step Viewed"
CHECKOUT_STEP_COMPLETED = "Checkout Step Completed"
PAYMENT_INFO_ENTERED = "Payment Info Entered"
ORDER_UPDATED = "Order Updated"
ORDER_COMPLETED = "Order Completed"
ORDER_REFUNDED = "Order Refunded"
ORDER_CANCELLED = "Order Cancelled"

# Coupons
COUPON_ENTERED = "Coupon Entered"
COUPON_APPLIED = "Coupon Applied"
COUPON_DENIED = "Coupon Denied"
COUPON_REMOVED = "Coupon Removed"

# Wishlisting, sharing, reviewing
PRODUCT_ADDED_TO_WISHLIST = "Product Added to Wishlist"
PRODUCT_REMOVED_FROM_WISHLIST = "Product Removed from Wishlist"
WISHLIST_PRODUCT_ADDED_TO_CART = "Wishlist Product Added to Cart"
PRODUCT_SHARED = "Product Shared"
CART_SHARED = "Cart Shared"
PRODUCT_REVIEWED = "Product Reviewed"

BROWSING = (PRODUCTS_SEARCHED, PRODUCT_LIST_VIEWED, PRODUCT_LIST_FILTERED, PRODUCT_CLICKED, PRODUCT_VIEWED)
ORDERING = (
    PRODUCT_ADDED,
    PRODUCT_REMOVED,
    CART_VIEWED,
    CHECKOUT_STARTED,
    CHECKOUT_STEP_VIEWED,
    CHECKOUT_STEP_COMPLETED,
    PAYMENT_INFO_ENTERED,
    ORDER_UPDATED,
    ORDER_COMPLETED,
    ORDER_REFUNDED,
    ORDER_CANCELLED,
)
