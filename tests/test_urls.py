"""Tests for parsers.urls: canonical URLs, tracking parameters, redirect unwrapping."""

from __future__ import annotations

import hashlib
from urllib.parse import quote

import pytest

from parsers.urls import article_id, canonicalize_url, host_of, is_tracking_param, unwrap_redirect


@pytest.mark.parametrize(
    ("url", "base", "expected"),
    [
        ("HTTP://Example.COM:80/a/./b/../c?b=2&a=1#frag", None, "http://example.com/a/c?a=1&b=2"),
        ("https://example.com", None, "https://example.com/"),
        ("https://example.com:443/x", None, "https://example.com/x"),
        ("https://example.com:8443/x", None, "https://example.com:8443/x"),
        ("/blog/2003/12/13/atom03", "https://example.com/blog/feed.xml",
         "https://example.com/blog/2003/12/13/atom03"),
        ("post?id=3", "https://example.com/blog/feed.xml", "https://example.com/blog/post?id=3"),
        ("//cdn.example.com/a", "https://example.com/", "https://cdn.example.com/a"),
        ("https://example.com/a?utm_source=rss&utm_medium=feed&id=7&fbclid=abc&gclid=x",
         None, "https://example.com/a?id=7"),
        ("https://example.com/a?mc_cid=1&mc_eid=2&igshid=3&ref=hn&ref_src=twsrc&cmpid=9&_hsenc=p",
         None, "https://example.com/a"),
        ("https://www.heise.de/news/x.html?wt_mc=rss.ho.beitrag.rdf", None,
         "https://www.heise.de/news/x.html"),
        ("https://example.com/%7euser/%e2%82%ac", None, "https://example.com/~user/%E2%82%AC"),
        ("https://example.com/a b/ä", None, "https://example.com/a%20b/%C3%A4"),
        ("https://bücher.example/x", None, "https://xn--bcher-kva.example/x"),
        ("https://user:secret@example.com/x", None, "https://example.com/x"),
        ("  https://example.com/x\n", None, "https://example.com/x"),
        ("https://example.com/a?q=a+b&q=%41", None, "https://example.com/a?q=A&q=a+b"),
        ("https://[2001:DB8::1]:443/x", None, "https://[2001:db8::1]/x"),
        ("https://example.com./x", None, "https://example.com/x"),
    ],
)
def test_canonicalize_url(url: str, base: str | None, expected: str) -> None:
    result = canonicalize_url(url, base)
    assert result == expected
    assert canonicalize_url(result) == result


@pytest.mark.parametrize(
    "url",
    ["mailto:a@example.com", "ftp://example.com/x", "javascript:alert(1)", "/relative/only",
     "https:///nohost", "http://", "", "example.com/x", "https://exa mple.com/", "http://[::1/"],
)
def test_canonicalize_rejects(url: str) -> None:
    with pytest.raises(ValueError):
        canonicalize_url(url)


def test_tracking_param_names() -> None:
    assert is_tracking_param("utm_campaign") and is_tracking_param("UTM_Source")
    assert is_tracking_param("fbclid") and is_tracking_param("_hsenc")
    assert not is_tracking_param("id") and not is_tracking_param("page")


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://www.google.com/url?rct=j&sa=t&url=https://www.example.com/story/&ct=ga",
         "https://www.example.com/story/"),
        ("https://www.google.co.uk/url?q=https%3A%2F%2Fexample.org%2Fa%3Fx%3D1&sa=U",
         "https://example.org/a?x=1"),
        ("http://news.google.com/news/url?sa=t&fd=R&url=http://publisher.example/a.html&usg=x",
         "http://publisher.example/a.html"),
        ("https://l.facebook.com/l.php?u=https%3A%2F%2Fexample.net%2Fp&h=AT0",
         "https://example.net/p"),
        ("https://www.linkedin.com/redir/redirect?url=https%3A%2F%2Fexample.net%2Fq",
         "https://example.net/q"),
        # Old Google News token: base64 protobuf carrying the publisher URL.
        (("https://news.google.com/rss/articles/"
          "CBMiK2h0dHBzOi8vd3d3LmV4YW1wbGUuY29tL25ld3MvYXJ0aWNsZS0xMjPSAQA?oc=5"),
         "https://www.example.com/news/article-123"),
        # Cannot be unwrapped offline: stay as they are.
        ("https://t.co/AbCdEf123", "https://t.co/AbCdEf123"),
        ("https://news.google.com/rss/articles/AU_yqLOpaqueToken?oc=5",
         "https://news.google.com/rss/articles/AU_yqLOpaqueToken?oc=5"),
        ("https://www.google.com/url?q=javascript:alert(1)",
         "https://www.google.com/url?q=javascript:alert(1)"),
        ("https://example.com/url?url=https://other.example/", "https://example.com/url?url=https://other.example/"),
    ],
)
def test_unwrap_redirect(url: str, expected: str) -> None:
    assert unwrap_redirect(url) == expected


def test_unwrap_nested_redirect() -> None:
    inner = "https://www.google.com/url?url=" + quote("https://example.com/final", safe="")
    outer = "https://l.facebook.com/l.php?u=" + quote(inner, safe="")
    assert unwrap_redirect(outer) == "https://example.com/final"


def test_article_id_and_host() -> None:
    url = "https://example.com/a"
    assert article_id(url) == hashlib.sha256(url.encode()).hexdigest()[:16]
    assert len(article_id(url)) == 16
    assert article_id(url) != article_id("https://example.com/b")
    assert host_of("https://WWW.Example.com:8080/x") == "www.example.com"
    assert host_of("not a url") == ""
