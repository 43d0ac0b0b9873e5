//! Pascal VOC annotation reader, for measuring against labelled scene sets: tests/pipeline.rs and
//! examples/peers.rs include this file to read `../shared/data/face-mask-detection` (evaluation
//! code, so it is not in the product crate). Handles the flat files those sets use:
//! `<filename>` plus `<object><name>…<bndbox>…</bndbox></object>` entries.

use maskgate::BBox;

/// One annotated image: file name and (label, box) per object.
#[derive(Debug, Clone, PartialEq)]
pub struct Annotation {
    pub filename: String,
    pub objects: Vec<(String, BBox)>,
}

fn tag<'a>(s: &'a str, t: &str) -> Option<&'a str> {
    let open = format!("<{t}>");
    let a = s.find(&open)? + open.len();
    let b = s[a..].find(&format!("</{t}>"))? + a;
    Some(s[a..b].trim())
}

/// Parses one VOC XML document; `None` when a required tag is missing or a coordinate is not a number.
pub fn parse(xml: &str) -> Option<Annotation> {
    let filename = tag(xml, "filename")?.to_string();
    let mut objects = Vec::new();
    for obj in xml.split("<object>").skip(1) {
        let f = |t: &str| tag(obj, t).and_then(|v| v.parse::<f32>().ok());
        let b = BBox {
            x1: f("xmin")?,
            y1: f("ymin")?,
            x2: f("xmax")?,
            y2: f("ymax")?,
        };
        objects.push((tag(obj, "name")?.to_string(), b));
    }
    Some(Annotation { filename, objects })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_objects_and_refuses_broken_files() {
        let xml = "<annotation><filename>a.jpg</filename><object><name>with_mask</name>\
                   <bndbox><xmin>1</xmin><ymin>2</ymin><xmax>30</xmax><ymax>40.5</ymax></bndbox></object>\
                   <object><name>without_mask</name><bndbox><xmin>5</xmin><ymin>6</ymin><xmax>7</xmax>\
                   <ymax>8</ymax></bndbox></object></annotation>";
        let a = parse(xml).unwrap();
        assert_eq!(a.filename, "a.jpg");
        assert_eq!(a.objects.len(), 2);
        assert_eq!(
            a.objects[0],
            (
                "with_mask".to_string(),
                BBox {
                    x1: 1.0,
                    y1: 2.0,
                    x2: 30.0,
                    y2: 40.5
                }
            )
        );
        assert_eq!(a.objects[1].0, "without_mask");
        assert!(parse("<annotation></annotation>").is_none());
        assert!(
            parse("<filename>a</filename><object><name>x</name><xmin>q</xmin></object>").is_none()
        );
    }
}
