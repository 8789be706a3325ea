//! Pascal VOC XML annotations: one file per image, `<annotation>` with `<filename>`,
//! `<size><width>/<height>`, and `<object>`s with `<name>`, `<difficult>` and
//! `<bndbox><xmin>/<ymin>/<xmax>/<ymax>` (read as pixel edges, as DeepForest writes them).

use std::path::Path;

use crate::boxes::Bbox;
use crate::{DetectError, Result};

/// One annotated object.
#[derive(Clone, Debug, PartialEq)]
pub struct VocObject {
    /// Class name.
    pub name: String,
    /// The box.
    pub bbox: Bbox,
    /// Marked difficult.
    pub difficult: bool,
}

/// One VOC annotation file.
#[derive(Clone, Debug, PartialEq)]
pub struct VocAnnotation {
    /// The image's file name.
    pub filename: String,
    /// Image width in pixels.
    pub width: u32,
    /// Image height in pixels.
    pub height: u32,
    /// The objects.
    pub objects: Vec<VocObject>,
}

fn invalid(source: &str, what: String) -> DetectError {
    DetectError::Invalid(format!("{source}: {what}"))
}

fn child<'a, 'i>(node: roxmltree::Node<'a, 'i>, name: &str) -> Option<roxmltree::Node<'a, 'i>> {
    node.children().find(|c| c.has_tag_name(name))
}

fn text<'a>(node: roxmltree::Node<'a, '_>, name: &str, source: &str) -> Result<&'a str> {
    child(node, name)
        .and_then(|c| c.text())
        .map(str::trim)
        .ok_or_else(|| {
            invalid(
                source,
                format!("<{}> has no <{name}>", node.tag_name().name()),
            )
        })
}

fn number<T: std::str::FromStr>(node: roxmltree::Node, name: &str, source: &str) -> Result<T> {
    let t = text(node, name, source)?;
    t.parse()
        .map_err(|_| invalid(source, format!("<{name}> is '{t}', not a number")))
}

/// Deepest element nesting accepted. The XML parser recurses once per level, so a file
/// nested tens of thousands deep would overflow the stack: it is refused before parsing.
pub const MAX_DEPTH: usize = 256;

/// The element depth at which `xml` passes `limit`, if it does, found by a scan of its tags
/// (comments, CDATA, processing instructions, declarations and quoted attribute values are
/// skipped). Malformed text is left to the parser to report.
fn nesting_beyond(xml: &str, limit: usize) -> Option<usize> {
    let b = xml.as_bytes();
    let find = |from: usize, pat: &[u8]| {
        b[from.min(b.len())..]
            .windows(pat.len())
            .position(|w| w == pat)
            .map(|p| from + p + pat.len())
    };
    let (mut i, mut depth) = (0usize, 0usize);
    while i < b.len() {
        if b[i] != b'<' {
            i += 1;
            continue;
        }
        let rest = &b[i..];
        i = if rest.starts_with(b"<!--") {
            find(i + 4, b"-->")?
        } else if rest.starts_with(b"<![CDATA[") {
            find(i + 9, b"]]>")?
        } else if rest.starts_with(b"<?") {
            find(i + 2, b"?>")?
        } else if rest.starts_with(b"<!") {
            // A declaration; its internal subset ends at "]>".
            match (find(i, b"["), find(i, b">")) {
                (Some(open), Some(close)) if open < close => find(open, b"]>")?,
                (_, close) => close?,
            }
        } else if rest.starts_with(b"</") {
            depth = depth.saturating_sub(1);
            find(i, b">")?
        } else {
            // A start tag: find its end outside quoted attribute values.
            let mut j = i + 1;
            let mut quote = None;
            while j < b.len() {
                match (quote, b[j]) {
                    (None, q @ (b'"' | b'\'')) => quote = Some(q),
                    (Some(q), c) if c == q => quote = None,
                    (None, b'>') => break,
                    _ => {}
                }
                j += 1;
            }
            if j >= b.len() {
                return None;
            }
            if b[j - 1] != b'/' {
                depth += 1;
                if depth > limit {
                    return Some(depth);
                }
            }
            j + 1
        };
    }
    None
}

/// Parse the text of a VOC file (`source` names it in errors).
pub fn parse_voc(xml: &str, source: &str) -> Result<VocAnnotation> {
    if let Some(depth) = nesting_beyond(xml, MAX_DEPTH) {
        return Err(invalid(
            source,
            format!(
                "elements nested {depth} deep (a VOC file nests 3 deep; more than {MAX_DEPTH} \
                 is refused before parsing)"
            ),
        ));
    }
    let doc = roxmltree::Document::parse(xml)
        .map_err(|e| invalid(source, format!("not well-formed XML: {e}")))?;
    let root = doc.root_element();
    if !root.has_tag_name("annotation") {
        return Err(invalid(
            source,
            format!(
                "root element is <{}>, not <annotation>",
                root.tag_name().name()
            ),
        ));
    }
    let size = child(root, "size").ok_or_else(|| invalid(source, "no <size>".into()))?;
    let mut objects = Vec::new();
    for object in root.children().filter(|c| c.has_tag_name("object")) {
        let bndbox = child(object, "bndbox")
            .ok_or_else(|| invalid(source, "<object> has no <bndbox>".into()))?;
        let corner = |name: &str| number::<f64>(bndbox, name, source);
        objects.push(VocObject {
            name: text(object, "name", source)?.to_string(),
            bbox: Bbox::new(
                corner("xmin")?,
                corner("ymin")?,
                corner("xmax")?,
                corner("ymax")?,
            ),
            difficult: child(object, "difficult")
                .and_then(|d| d.text())
                .is_some_and(|t| t.trim() == "1"),
        });
    }
    Ok(VocAnnotation {
        filename: text(root, "filename", source)?.to_string(),
        width: number(size, "width", source)?,
        height: number(size, "height", source)?,
        objects,
    })
}

/// Read and parse a VOC file.
pub fn load_voc(path: impl AsRef<Path>) -> Result<VocAnnotation> {
    let path = path.as_ref();
    let xml = std::fs::read_to_string(path).map_err(|error| DetectError::Io {
        path: path.display().to_string(),
        error,
    })?;
    parse_voc(&xml, &path.display().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deep_nesting_is_refused_before_parsing_and_tags_in_text_do_not_count() {
        let deep = format!("{}{}", "<a>".repeat(20_000), "</a>".repeat(20_000));
        let err = parse_voc(&deep, "deep.xml").unwrap_err().to_string();
        assert!(
            err.contains("deep.xml") && err.contains("nested 257 deep"),
            "{err}"
        );
        assert_eq!(nesting_beyond(&"<a>".repeat(256), 256), None);
        let hidden = format!(
            "<!DOCTYPE x [<!ENTITY e \"<a>\">]><annotation t='<b>'><!-- {0} --><![CDATA[{0}]]><?p {0}?><c/></annotation>",
            "<a>".repeat(1000)
        );
        assert_eq!(nesting_beyond(&hidden, 2), None);
        assert_eq!(nesting_beyond("<a><b><c/></b></a>", 1), Some(2));
    }

    const XML: &str = r#"<annotation>
  <folder>images</folder><filename>OSBS_029.tif</filename>
  <size><width>400</width><height>400</height><depth>3</depth></size>
  <object><name>Tree</name><difficult>0</difficult>
    <bndbox><xmin>203</xmin><ymin>67</ymin><xmax>227</xmax><ymax>90</ymax></bndbox></object>
  <object><name>Dead</name><difficult>1</difficult>
    <bndbox><xmin>0</xmin><ymin>1.5</ymin><xmax>10</xmax><ymax>20</ymax></bndbox></object>
</annotation>"#;

    #[test]
    fn reads_voc() {
        let a = parse_voc(XML, "t.xml").unwrap();
        assert_eq!(a.filename, "OSBS_029.tif");
        assert_eq!((a.width, a.height), (400, 400));
        assert_eq!(a.objects.len(), 2);
        assert_eq!(a.objects[0].bbox, Bbox::new(203.0, 67.0, 227.0, 90.0));
        assert!(a.objects[1].difficult && a.objects[1].name == "Dead");
    }

    #[test]
    fn bad_voc_files_say_what_is_wrong() {
        let cases = [
            ("<annotation>", "not well-formed"),
            ("<root/>", "not <annotation>"),
            (
                &XML.replace("<xmax>227</xmax>", "") as &str,
                "<bndbox> has no <xmax>",
            ),
            (
                &XML.replace("<width>400</width>", "<width>wide</width>"),
                "'wide', not a number",
            ),
        ];
        for (xml, needle) in cases {
            let err = parse_voc(xml, "bad.xml").unwrap_err().to_string();
            assert!(err.contains(needle) && err.starts_with("bad.xml"), "{err}");
        }
    }
}
