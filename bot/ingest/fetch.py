"""Fetch a web page safely: http(s) only, public addresses only, timeouts, size cap, few redirects."""

from __future__ import annotations

import ipaddress
import socket
import time
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit, urlunsplit

import httpx

USER_AGENT = "citebot/0.1 (+news article fetcher)"
HTML_TYPES = ("text/html", "application/xhtml+xml")
FEED_TYPES = (
    "application/rss+xml",
    "application/atom+xml",
    "application/rdf+xml",
    "application/xml",
    "text/xml",
    "application/feed+json",
)


class FetchRefused(ValueError):
    """A link that was not fetched, or not used; the message is one line saying why."""


@dataclass(frozen=True)
class FetchPolicy:
    """What a fetch may do: FETCH_TIMEOUT, MAX_PAGE_BYTES, ALLOW_PRIVATE_URLS, MAX_REDIRECTS."""

    timeout: float = 15.0
    max_bytes: int = 2_000_000
    max_redirects: int = 5
    allow_private: bool = False
    # Exact addresses exempt from the private-address check (tests: the local site, not its neighbours).
    trusted_addresses: frozenset[str] = field(default_factory=frozenset)


@dataclass(frozen=True)
class Page:
    """A fetched document: the URL asked for, where it ended up, its type, body and caching headers."""

    requested: str
    url: str
    content_type: str
    body: bytes
    status: int = 200
    etag: str | None = None
    last_modified: str | None = None

    @property
    def not_modified(self) -> bool:
        return self.status == 304


def check_url(url: str) -> str:
    """The URL, stripped, if it is an http(s) URL with a host; else FetchRefused naming the problem."""
    url = url.strip()
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https"):
        scheme = f"{parts.scheme}:" if parts.scheme else "no scheme"
        raise FetchRefused(f"Only http:// and https:// links can be added, not {scheme} ({url[:80]}).")
    if not parts.hostname:
        raise FetchRefused(f"That link has no host name: {url[:80]}")
    if parts.username or parts.password:
        raise FetchRefused("Links with a user name or password in them are not fetched.")
    return url


def _is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def check_address(url: str, policy: FetchPolicy) -> str | None:
    """Refuse a URL whose host resolves to a private, loopback or otherwise non-public address.

    Returns the checked address to connect to (None when ALLOW_PRIVATE_URLS skips the check),
    so that a second DNS answer cannot swap in another address after the check.
    """
    host = urlsplit(url).hostname or ""
    if policy.allow_private:
        return None
    try:
        port = urlsplit(url).port or (443 if url.lower().startswith("https") else 80)
    except ValueError:
        raise FetchRefused(f"That link has a bad port number: {url[:80]}") from None
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise FetchRefused(f"Cannot find the server {host!r} (no such host).") from None
    addresses = [str(info[4][0]) for info in infos]
    for address in addresses:
        if address in policy.trusted_addresses:
            continue
        if not _is_public(address):
            raise FetchRefused(
                f"That link leads to a private or local address ({host} is {address}); "
                f"set ALLOW_PRIVATE_URLS=true to allow such links."
            )
    return addresses[0]


def _pinned(url: str, address: str | None) -> tuple[str, dict[str, str], dict[str, str]]:
    """(URL to request, extra headers, httpx extensions) connecting to `address` as the URL's host.

    The Host header and, for https, the TLS server name (SNI and certificate check) stay the
    URL's own host name.
    """
    if address is None:
        return url, {}, {}
    parts = urlsplit(url)
    literal = f"[{address}]" if ":" in address else address
    netloc = literal + (f":{parts.port}" if parts.port else "")
    pinned = urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))
    host_header = parts.netloc.rsplit("@", 1)[-1]
    extensions = {"sni_hostname": parts.hostname or ""} if parts.scheme.lower() == "https" else {}
    return pinned, {"Host": host_header}, extensions


def _media_type(response: httpx.Response) -> str:
    return response.headers.get("content-type", "").split(";", 1)[0].strip().lower()


def fetch(
    url: str,
    policy: FetchPolicy,
    accept: tuple[str, ...] = HTML_TYPES,
    headers: dict[str, str] | None = None,
) -> Page:
    """GET `url` within the policy, following up to max_redirects redirects (each one re-checked).

    Raises FetchRefused with a one-line reason: bad scheme, private address, no such host,
    timeout, too large, not the accepted content type, too many redirects, HTTP error.
    A 304 answer (to If-None-Match/If-Modified-Since in `headers`) comes back as a Page.
    Each hop connects to the address that was checked, with a client of its own (no
    connection reused across host names).
    """
    requested = url = check_url(url)
    deadline = time.monotonic() + policy.timeout
    for _hop in range(policy.max_redirects + 1):
        target, pin_headers, extensions = _pinned(url, check_address(url, policy))
        client = httpx.Client(
            timeout=httpx.Timeout(policy.timeout),
            follow_redirects=False,
            trust_env=False,
            headers={"User-Agent": USER_AGENT},
        )
        try:
            request = client.build_request(
                "GET", target, headers={**(headers or {}), **pin_headers}, extensions=extensions
            )
            response = client.send(request, stream=True)
            try:
                if response.has_redirect_location:
                    url = check_url(urljoin(url, response.headers.get("location", "")))
                    continue
                return _read(requested, url, response, policy, accept, deadline)
            finally:
                response.close()
        except httpx.TimeoutException:
            raise FetchRefused(f"The site did not answer within {policy.timeout:g} s (timeout).") from None
        except httpx.HTTPError as exc:
            raise FetchRefused(f"Could not load the page: {type(exc).__name__}: {exc}".splitlines()[0]) from None
        finally:
            client.close()
    raise FetchRefused(f"Too many redirects (more than {policy.max_redirects}); giving up.")


def _read(
    requested: str, url: str, response: httpx.Response, policy: FetchPolicy, accept: tuple[str, ...], deadline: float
) -> Page:
    caching = {"etag": response.headers.get("etag"), "last_modified": response.headers.get("last-modified")}
    if response.status_code == 304:
        return Page(requested, url, "", b"", 304, **caching)
    if response.status_code >= 400:
        raise FetchRefused(f"The site answered {response.status_code} {response.reason_phrase} for {url[:100]}.")
    media = _media_type(response)
    if media not in accept:
        kind = "an HTML page" if accept == HTML_TYPES else "a feed"
        raise FetchRefused(f"That link is not {kind} (it is {media or 'of unknown type'}).")
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > policy.max_bytes:
        raise FetchRefused(f"That page is too large ({int(declared):,} bytes; the limit is {policy.max_bytes:,}).")
    body = bytearray()
    for chunk in response.iter_bytes():
        body += chunk
        if len(body) > policy.max_bytes:
            raise FetchRefused(f"That page is too large (over the limit of {policy.max_bytes:,} bytes).")
        if time.monotonic() > deadline:
            raise FetchRefused(f"The site did not send the page within {policy.timeout:g} s (timeout).")
    return Page(requested, url, media, bytes(body), response.status_code, **caching)
