"""Security headers on every response: pages, API, static files and errors alike.

The policy allows scripts, styles, pictures and requests from the app itself only, so pages carry
no inline script, event handler or style attribute (behaviour lives in static/js, keyed by data-
attributes). No page is meant to be framed, not even the kiosk or the poster: they are opened, not
embedded. HSTS goes out only on a request that came over HTTPS (behind a trusted proxy, ProxyFix
makes `request.is_secure` honour X-Forwarded-Proto), never over plain HTTP on a village network.
"""

from __future__ import annotations

from flask import Flask, Response, request

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "connect-src 'self'",
        "font-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)

HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    # Same-origin: a page's address (which may carry a personal or venue code) never leaves the site.
    "Referrer-Policy": "same-origin",
    # The camera serves the clerk's and the organizer's scanners, on the app's own pages only.
    "Permissions-Policy": "camera=(self), microphone=(), geolocation=(), payment=(), usb=()",
    "Cross-Origin-Opener-Policy": "same-origin",
}

STRICT_TRANSPORT_SECURITY = "max-age=31536000"


def init_app(app: Flask) -> None:
    @app.after_request
    def _security_headers(response: Response) -> Response:
        for name, value in HEADERS.items():
            response.headers.setdefault(name, value)
        if request.is_secure:
            response.headers.setdefault("Strict-Transport-Security", STRICT_TRANSPORT_SECURITY)
        return response
