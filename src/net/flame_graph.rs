//! A flame graph of sampled stacks as a self-contained SVG: one box per function per stack
//! prefix, as wide as the samples under it, callers below their callees' towers inverted into
//! the usual icicle-up shape (the root at the bottom). Hovering a box shows its name and
//! share in the SVG's own `<title>`; there is no script.

use std::collections::BTreeMap;
use std::fmt::Write;

/// The drawing's width and one frame's height, in pixels.
const WIDTH: f64 = 1200.0;
const FRAME_HEIGHT: f64 = 16.0;
/// Boxes narrower than this are left out (their samples still count in their callers).
const MIN_WIDTH: f64 = 0.3;
/// Characters that fit a box per pixel of width, at the 11 px font.
const CHARS_PER_PIXEL: f64 = 1.0 / 6.5;

/// A node of the call tree: samples at or under it, and its callees by name.
#[derive(Default)]
struct Node {
    samples: u64,
    children: BTreeMap<String, Node>,
}

/// The flame graph of `stacks`: each a list of frames from the root (outermost caller) to the
/// leaf, with how many samples ended in it.
pub fn svg<I, S>(title: &str, stacks: I) -> String
where
    I: IntoIterator<Item = (Vec<S>, u64)>,
    S: Into<String>,
{
    let mut root = Node::default();
    for (frames, samples) in stacks {
        root.samples += samples;
        let mut node = &mut root;
        for frame in frames {
            node = node.children.entry(frame.into()).or_default();
            node.samples += samples;
        }
    }
    let depth = max_depth(&root);
    let height = (depth as f64 + 2.0) * FRAME_HEIGHT + 24.0;
    let mut out = String::new();
    let _ = write!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="monospace" font-size="11">"#
    );
    let _ = write!(
        out,
        r##"<rect width="100%" height="100%" fill="#fdfdf6"/><text x="{}" y="16" text-anchor="middle" font-size="14">{} ({} samples)</text>"##,
        WIDTH / 2.0,
        escape(title),
        root.samples
    );
    if root.samples > 0 {
        let mut boxes = Boxes { out: &mut out, total: root.samples as f64, bottom: height - FRAME_HEIGHT };
        boxes.draw("all", &root, 0.0, 0);
    }
    out.push_str("</svg>\n");
    out
}

fn max_depth(node: &Node) -> usize {
    node.children.values().map(|child| 1 + max_depth(child)).max().unwrap_or(0)
}

/// Where the boxes go.
struct Boxes<'a> {
    out: &'a mut String,
    total: f64,
    /// The root row's top edge.
    bottom: f64,
}

impl Boxes<'_> {
    /// Draws `node` (named `name`) at `x` and `level` rows up, then its callees above it.
    fn draw(&mut self, name: &str, node: &Node, x: f64, level: usize) {
        let width = node.samples as f64 / self.total * WIDTH;
        if width < MIN_WIDTH {
            return;
        }
        let y = self.bottom - level as f64 * FRAME_HEIGHT;
        let share = node.samples as f64 / self.total * 100.0;
        let label = fitted(name, width);
        let _ = write!(
            self.out,
            r#"<g><title>{} ({} samples, {share:.2}%)</title><rect x="{x:.2}" y="{y:.1}" width="{width:.2}" height="{}" fill="{}" rx="2"/><text x="{:.2}" y="{:.1}">{}</text></g>"#,
            escape(name),
            node.samples,
            FRAME_HEIGHT - 1.0,
            colour(name),
            x + 3.0,
            y + FRAME_HEIGHT - 4.0,
            escape(&label),
        );
        let mut child_x = x;
        for (child_name, child) in &node.children {
            self.draw(child_name, child, child_x, level + 1);
            child_x += child.samples as f64 / self.total * WIDTH;
        }
    }
}

/// As much of `name` as fits `width` pixels, cut with "..".
fn fitted(name: &str, width: f64) -> String {
    let room = ((width - 6.0) * CHARS_PER_PIXEL).floor().max(0.0) as usize;
    if name.chars().count() <= room {
        return name.to_owned();
    }
    if room < 3 {
        return String::new();
    }
    let mut cut: String = name.chars().take(room - 2).collect();
    cut.push_str("..");
    cut
}

/// A warm colour that stays the same for a name, run to run.
fn colour(name: &str) -> String {
    let hash = name.bytes().fold(0_u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)));
    let green = 90 + hash % 130;
    let blue = 30 + (hash / 130) % 50;
    format!("rgb(240,{green},{blue})")
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boxes_are_as_wide_as_their_samples_and_names_are_escaped() {
        let stacks = vec![
            (vec!["main", "serve", "find<T>"], 3),
            (vec!["main", "serve", "insert"], 1),
            (vec!["main", "idle"], 4),
        ];
        let drawn = svg("cpu", stacks);
        assert!(drawn.starts_with("<svg") && drawn.ends_with("</svg>\n"));
        assert!(drawn.contains("cpu (8 samples)"));
        assert!(drawn.contains("<title>main (8 samples, 100.00%)</title>"));
        assert!(drawn.contains("<title>serve (4 samples, 50.00%)</title>"));
        assert!(drawn.contains("find&lt;T&gt; (3 samples, 37.50%)"));
        // serve spans half the drawing; idle follows it at x = 0 (sorted by name, before serve).
        assert!(drawn.contains(r#"width="600.00""#));
        assert_eq!(fitted("monarch::cmd::call", 40.0), "mon..");
        assert_eq!(svg("empty", Vec::<(Vec<&str>, u64)>::new()).matches("<rect").count(), 1);
    }
}
