//! The built-in web page served at `GET /` when the files directory has no `index.html`
//! (a static `index.html` still wins, as in the reference, docs/interfaces.md §3.10).
//!
//! One self-contained HTML file (inline CSS and JS, nothing fetched from elsewhere),
//! embedded in the binary: a counter list with a search box (`GET /?q=`, §3.7) and an SVG
//! line chart of one counter over a range (`GET /<counter>?start=&end=&samples=`, §3.5).
//! The chart element `<svg id="chart">` carries the plotted points as
//! `data-points='[[time,avg],...]'` (and `data-state`: `idle`, `loading`, `ok`, `error`);
//! the URL fragment `#counter=NAME&start=S&end=E[&q=PATTERN][&samples=N]` selects a
//! counter and range on load (start and end: unix seconds or `YYYY-MM-DD HH:MM[:SS]` UTC;
//! default the last hour).

use super::response::Response;

/// The page, as served.
pub const HTML: &str = include_str!("page.html");

/// Its content type (the one static `.html` files get).
pub const CONTENT_TYPE: &str = "text/html; charset=utf-8";

/// `200` with the page.
pub fn response() -> Response {
    Response::new(200, CONTENT_TYPE, HTML.as_bytes().to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_has_the_chart_and_fetches_nothing_from_outside() {
        assert!(HTML.contains(r#"<svg id="chart""#));
        assert!(HTML.contains("data-points="));
        assert!(HTML.contains("/?q="));
        let lower = HTML.to_ascii_lowercase();
        assert!(!lower.contains("http://"), "page names an http:// URL");
        assert!(!lower.contains("https://"), "page names an https:// URL");
        assert!(
            !lower.contains("src=\"//"),
            "page loads a protocol-relative URL"
        );
        let resp = response();
        assert_eq!(resp.status, 200);
        assert_eq!(resp.content_type, CONTENT_TYPE);
        assert_eq!(resp.body, HTML.as_bytes());
    }
}
