//! The docs page: Swagger UI's own assets (vendored in `utoipa-swagger-ui`), our page around
//! them, and the Content-Security-Policy that page is served under.

use std::sync::Arc;

use utoipa_swagger_ui::Config;

/// Nothing but our own origin: no inline script or style, no CDN, no frames, no forms. Swagger
/// UI's "Try it out" calls this API (`connect-src 'self'`); its icons are `data:` images.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
img-src 'self' data:; font-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; \
frame-ancestors 'none'";

/// The page at `/v1/docs`. Asset URLs are relative to it (`docs/...`), and the document's URL
/// (`openapi.json`) is relative too, so the page works under any stage or domain prefix.
pub const INDEX_HTML: &str = r#"<!DOCTYPE html>
<html lang="en">
  <head>
    <meta charset="utf-8">
    <title>Roost API</title>
    <link rel="stylesheet" href="docs/swagger-ui.css">
    <link rel="stylesheet" href="docs/index.css">
    <link rel="icon" type="image/png" href="docs/favicon-32x32.png" sizes="32x32">
  </head>
  <body>
    <div id="swagger-ui"></div>
    <script src="docs/swagger-ui-bundle.js"></script>
    <script src="docs/swagger-ui-standalone-preset.js"></script>
    <script src="docs/swagger-initializer.js"></script>
  </body>
</html>
"#;

/// The files the page loads; nothing else of the distribution is served.
const ASSETS: &[&str] = &[
    "swagger-ui.css",
    "index.css",
    "favicon-32x32.png",
    "favicon-16x16.png",
    "swagger-ui-bundle.js",
    "swagger-ui-standalone-preset.js",
    "swagger-initializer.js",
];

/// Swagger UI's configuration, rendered into `swagger-initializer.js`.
pub struct Page {
    config: Arc<Config<'static>>,
}

/// One asset: its bytes and media type.
pub struct Asset {
    pub bytes: Vec<u8>,
    pub content_type: String,
}

impl Page {
    pub fn new() -> Self {
        // BaseLayout: no top bar. The standalone layout's top bar draws Swagger's logo as an SVG
        // with an inline <style> element, which `style-src 'self'` refuses (a console error in
        // every browser); the bar's only other use, a box to load another document, is not ours.
        let config =
            Config::from("openapi.json").use_base_layout().display_request_duration(true).show_extensions(true);
        Self { config: Arc::new(config) }
    }

    /// The asset named `file`, if the page uses it.
    pub fn asset(&self, file: &str) -> Option<Asset> {
        if !ASSETS.contains(&file) {
            return None;
        }
        let found = utoipa_swagger_ui::serve(file, self.config.clone()).ok()??;
        Some(Asset { bytes: found.bytes.into_owned(), content_type: found.content_type })
    }
}

impl Default for Page {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_asset_the_page_names_is_served_and_nothing_else() {
        let page = Page::new();
        for asset in ASSETS {
            let found = page.asset(asset).unwrap_or_else(|| panic!("{asset} is missing"));
            assert!(!found.bytes.is_empty(), "{asset} is empty");
        }
        for link in INDEX_HTML.split("docs/").skip(1) {
            let name = &link[..link.find('"').unwrap()];
            assert!(ASSETS.contains(&name), "the page loads {name}, which is not served");
        }
        assert!(page.asset("index.html").is_none() && page.asset("../Cargo.toml").is_none());
        let init = String::from_utf8(page.asset("swagger-initializer.js").unwrap().bytes).unwrap();
        assert!(init.contains(r#""url": "openapi.json""#), "{init}");
        assert!(init.contains(r#""layout": "BaseLayout""#), "the top bar's logo breaks the CSP: {init}");
    }

    #[test]
    fn the_page_has_no_inline_script_or_style_and_loads_nothing_from_elsewhere() {
        assert!(!INDEX_HTML.contains("<script>") && !INDEX_HTML.contains("<style"));
        assert!(!INDEX_HTML.contains("http:") && !INDEX_HTML.contains("https:") && !INDEX_HTML.contains("//"));
    }
}
