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

/// The GraphQL explorer at `/v1/docs/graphql`: our own small page (no GraphiQL: its builds load
/// React and the editor from a CDN), its script and style, the schema and the persisted queries
/// as examples. Relative URLs, like the reference page.
pub const EXPLORER_HTML: &str = include_str!("../explorer/graphql.html");

/// Swagger UI's configuration, rendered into `swagger-initializer.js`, and the explorer's files.
pub struct Page {
    config: Arc<Config<'static>>,
    explorer: Vec<(&'static str, &'static str, Vec<u8>)>,
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
        let explorer = vec![
            (
                "graphql-explorer.js",
                "application/javascript",
                include_bytes!("../explorer/graphql-explorer.js").to_vec(),
            ),
            ("graphql-explorer.css", "text/css", include_bytes!("../explorer/graphql-explorer.css").to_vec()),
            ("graphql-schema.graphql", "text/plain; charset=utf-8", graphql::schema::sdl().into_bytes()),
            ("graphql-examples.json", "application/json", graphql::persisted::catalogue().to_string().into_bytes()),
        ];
        Self { config: Arc::new(config), explorer }
    }

    /// The asset named `file`, if the reference page or the explorer uses it.
    pub fn asset(&self, file: &str) -> Option<Asset> {
        if let Some((_, content_type, bytes)) = self.explorer.iter().find(|(name, ..)| *name == file) {
            return Some(Asset { bytes: bytes.clone(), content_type: (*content_type).to_owned() });
        }
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
        for page in [INDEX_HTML, EXPLORER_HTML] {
            assert!(!page.contains("<script>") && !page.contains("<style"));
            assert!(!page.contains("http:") && !page.contains("https:") && !page.contains("//"));
        }
    }

    #[test]
    fn the_explorer_loads_only_what_is_served() {
        let page = Page::new();
        for link in EXPLORER_HTML.split(['"']).filter(|s| s.starts_with("graphql-") || s.starts_with("favicon")) {
            assert!(page.asset(link).is_some_and(|a| !a.bytes.is_empty()), "{link} is not served");
        }
        let script = String::from_utf8(page.asset("graphql-explorer.js").unwrap().bytes).unwrap();
        for fetched in ["graphql-schema.graphql", "graphql-examples.json"] {
            assert!(script.contains(fetched) && page.asset(fetched).is_some());
        }
        assert!(!script.contains("http:") && !script.contains("https:"));
        let examples: serde_json::Value =
            serde_json::from_slice(&page.asset("graphql-examples.json").unwrap().bytes).unwrap();
        assert!(examples.as_array().is_some_and(|e| e.len() >= 3), "{examples}");
    }
}
