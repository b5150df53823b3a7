//! `nsnet graph --html`: one self-contained page around the SVG, readable offline.

/// Details panel: a click on a network, namespace or link shows its tooltip text (the
/// inspect details) in a panel that stays, for copying. Tooltips alone work without script.
const SCRIPT: &str = r#"
document.querySelectorAll('svg a').forEach(function (a) {
  a.addEventListener('click', function (ev) {
    ev.preventDefault();
    document.getElementById('details').textContent = a.getAttribute('xlink:title');
  });
});
"#;

const STYLE: &str = r#"
body { font-family: Helvetica, Arial, sans-serif; margin: 1em; }
svg a { cursor: pointer; }
#details { background: #f4f4f4; padding: 0.5em; min-height: 3em; white-space: pre-wrap; }
.legend span { margin-right: 1.5em; }
"#;

/// The page: the SVG inline, without its XML prolog and DTD (the DTD is a URL a browser
/// might fetch) and without the xlink namespace declaration, which HTML's parser supplies.
pub fn page(svg: &str) -> String {
    let start = svg.find("<svg").unwrap_or(0);
    let svg = svg[start..].replace(" xmlns:xlink=\"http://www.w3.org/1999/xlink\"", "");
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>nsnet topology</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<h1>nsnet topology</h1>\n<p class=\"legend\"><span>solid border: network</span><span style=\"color:#c0392b\">dashed red: internal (nothing beyond it)</span><span style=\"color:#2e7d32\">bold green: routed</span><span>thick edge: primary network</span><span style=\"color:#7d3c98\">purple: point-to-point link</span><span>folded box: container</span></p>\n<p>Hover over an element for its details; click to keep them below.</p>\n{svg}\n<pre id=\"details\"></pre>\n<script>{SCRIPT}</script>\n</body>\n</html>\n"
    )
}

#[cfg(test)]
mod tests {
    use super::page;

    #[test]
    fn page_drops_the_dtd_and_xlink_declaration() {
        let svg = "<?xml version=\"1.0\"?>\n<!DOCTYPE svg PUBLIC \"-//W3C//DTD SVG 1.1//EN\"\n \"http://www.w3.org/Graphics/SVG/1.1/DTD/svg11.dtd\">\n<svg xmlns=\"http://www.w3.org/2000/svg\" xmlns:xlink=\"http://www.w3.org/1999/xlink\"><g/></svg>\n";
        let p = page(svg);
        assert!(
            p.contains("<svg xmlns=\"http://www.w3.org/2000/svg\"><g/></svg>"),
            "{p}"
        );
        assert!(!p.contains("svg11.dtd") && !p.contains("<?xml") && !p.contains("1999/xlink"));
    }
}
