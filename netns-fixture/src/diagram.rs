//! A picture of a topology: an SVG drawing of its nodes (boxes listing their
//! interfaces and addresses), bridges (with their ports) and veth links (lines from
//! interface to interface). The layout is computed here; the SVG has no script,
//! no external reference and uses only the generic `monospace` font, so it shows
//! the same offline, in a browser or embedded in a report.
//!
//! The busiest node goes in the middle; its neighbours to the left (the default
//! node's side) and right, and the nodes behind them further out.
//!
//! ```
//! use netns_fixture::diagram::Diagram;
//! let topology = netns_fixture::topology::builtin::get("two_servers").unwrap();
//! let svg = Diagram::new(&topology).mark("client", "test ran here").to_svg();
//! assert!(svg.starts_with("<svg"));
//! assert!(svg.contains("10.0.0.233/24"));
//! std::fs::write(std::env::temp_dir().join("two_servers.svg"), svg).unwrap();
//! ```

use netns_fixture_topology::{IpNet, Topology};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt::Write;

const FONT: f64 = 12.0;
/// Width of one character of the generic monospace font, in em.
const CHAR: f64 = 0.6 * FONT;
const ROW: f64 = 18.0;
/// Height of a box's title: the name, then a line of notes if it has any.
const HEADER: f64 = 44.0;
const HEADER_WITHOUT_NOTES: f64 = 30.0;
const FOOTER_LINE: f64 = 15.0;
const PAD: f64 = 10.0;
const PORT_INDENT: f64 = 16.0;
const COLUMN_GAP: f64 = 150.0;
const BOX_GAP: f64 = 34.0;
const MARGIN: f64 = 24.0;
const TITLE: f64 = 34.0;
const MIN_WIDTH: f64 = 170.0;

/// Draws a [`Topology`] as SVG.
///
/// ```
/// use netns_fixture::diagram::Diagram;
/// let lan = netns_fixture::topology::builtin::get("lan").unwrap();
/// let svg = Diagram::new(&lan).to_svg();
/// for name in ["ns1", "ns2", "host", "internet", "br0", "veth1-br", "192.168.0.1/24"] {
///     assert!(svg.contains(name), "{name}");
/// }
/// ```
#[derive(Debug, Clone)]
pub struct Diagram<'t> {
    topology: &'t Topology,
    marks: Vec<(String, String)>,
}

/// One interface line of a node box.
#[derive(Debug, Clone)]
struct Row {
    interface: String,
    addresses: Vec<IpNet>,
    bridge: bool,
    port_of: Option<String>,
}

/// A node box, placed.
#[derive(Debug, Clone)]
struct Placed {
    name: String,
    notes: Vec<String>,
    mark: Option<String>,
    rows: Vec<Row>,
    routes: Vec<String>,
    column: i32,
    /// Height of the title part, above the interface rows.
    header: f64,
    x: f64,
    y: f64,
    width: f64,
    height: f64,
}

impl Placed {
    fn row_y(&self, interface: &str) -> Option<f64> {
        let i = self.rows.iter().position(|r| r.interface == interface)?;
        Some(self.y + self.header + ROW * i as f64 + ROW / 2.0)
    }
}

/// The computed picture: boxes and the canvas size.
#[derive(Debug)]
struct Layout {
    boxes: Vec<Placed>,
    width: f64,
    height: f64,
}

impl<'t> Diagram<'t> {
    /// A diagram of `topology`.
    pub fn new(topology: &'t Topology) -> Self {
        Diagram {
            topology,
            marks: Vec::new(),
        }
    }

    /// Highlights `node` with a short `note` (e.g. where a failed test ran).
    ///
    /// ```
    /// # let t = netns_fixture::topology::builtin::get("pair").unwrap();
    /// let svg = netns_fixture::diagram::Diagram::new(&t).mark("ns-1", "test ran here").to_svg();
    /// assert!(svg.contains("test ran here"));
    /// ```
    pub fn mark(mut self, node: &str, note: &str) -> Self {
        self.marks.push((node.to_string(), note.to_string()));
        self
    }

    /// The SVG document (UTF-8 text, `<svg ...>...</svg>`), sized to its content.
    pub fn to_svg(&self) -> String {
        let layout = self.layout();
        let mut svg = String::new();
        let (w, h) = (layout.width.ceil(), layout.height.ceil());
        let _ = write!(
            svg,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="monospace" font-size="{FONT}" role="img" aria-label="topology {name}">"#,
            name = escape(self.topology.name())
        );
        svg.push_str(concat!(
            "<style>",
            ".node{fill:#f4f8fd;stroke:#46688f;stroke-width:1.5}",
            ".marked{fill:#fff5f4;stroke:#c0392b;stroke-width:2.5}",
            ".name{font-weight:bold;font-size:14px;fill:#1d2b3a}",
            ".note{fill:#5b6b7c;font-size:11px}",
            ".mark{fill:#c0392b;font-size:11px;font-weight:bold}",
            ".if{font-weight:bold;fill:#1d2b3a}",
            ".addr{fill:#0b6e4f}",
            ".route{fill:#5b6b7c;font-size:11px}",
            ".bridge{fill:#e3ecf7;stroke:#46688f;stroke-width:1}",
            ".tree{stroke:#46688f;stroke-width:1;fill:none}",
            ".link{stroke:#2c3e50;stroke-width:2;fill:none}",
            ".port{fill:#2c3e50}",
            ".title{font-size:15px;font-weight:bold;fill:#1d2b3a}",
            "</style>"
        ));
        let _ = write!(
            svg,
            r#"<text class="title" x="{MARGIN}" y="{}">lab {}</text>"#,
            MARGIN + 4.0,
            escape(self.topology.name())
        );
        for placed in &layout.boxes {
            draw_box(&mut svg, placed);
        }
        self.draw_links(&mut svg, &layout);
        svg.push_str("</svg>");
        svg
    }

    fn draw_links(&self, svg: &mut String, layout: &Layout) {
        let find = |node: &str| layout.boxes.iter().find(|b| b.name == node);
        for link in self.topology.links() {
            let (Some(a), Some(b)) = (find(&link.a.node), find(&link.b.node)) else {
                continue;
            };
            let (Some(ya), Some(yb)) = (a.row_y(&link.a.interface), b.row_y(&link.b.interface))
            else {
                continue;
            };
            let path = if a.column == b.column {
                // Same column (or the same node): a loop on the right side.
                let (xa, xb) = (a.x + a.width, b.x + b.width);
                let bulge = xa.max(xb) + 50.0;
                format!("M{xa:.1} {ya:.1} C{bulge:.1} {ya:.1} {bulge:.1} {yb:.1} {xb:.1} {yb:.1}")
            } else {
                let (left, ly, right, ry) = if a.column < b.column {
                    (a, ya, b, yb)
                } else {
                    (b, yb, a, ya)
                };
                let x1 = left.x + left.width;
                let x2 = right.x;
                let mid = (x1 + x2) / 2.0;
                format!("M{x1:.1} {ly:.1} C{mid:.1} {ly:.1} {mid:.1} {ry:.1} {x2:.1} {ry:.1}")
            };
            let _ = write!(
                svg,
                r#"<path class="link" d="{path}"><title>{}/{} &#8596; {}/{}</title></path>"#,
                escape(&link.a.node),
                escape(&link.a.interface),
                escape(&link.b.node),
                escape(&link.b.interface)
            );
            for (placed, y, end) in [(a, ya, &link.a), (b, yb, &link.b)] {
                // The side facing the other end; loops leave from the right.
                let x = if a.column == b.column || placed.column == a.column.min(b.column) {
                    placed.x + placed.width
                } else {
                    placed.x
                };
                let _ = write!(
                    svg,
                    r#"<circle class="port" cx="{x:.1}" cy="{y:.1}" r="3.5"><title>{}</title></circle>"#,
                    escape(&end.interface)
                );
            }
        }
    }

    /// Where every box goes.
    fn layout(&self) -> Layout {
        let topology = self.topology;
        let columns = self.columns();
        let mut boxes: Vec<Placed> = topology
            .nodes()
            .iter()
            .map(|spec| {
                let rows = rows_of(topology, &spec.name);
                let mut notes = Vec::new();
                if spec.name == topology.default_node() {
                    notes.push("default node".to_string());
                }
                if spec.forwarding {
                    notes.push("forwarding".to_string());
                }
                if spec.firewall.is_some() {
                    notes.push("firewall".to_string());
                }
                let routes: Vec<String> = spec
                    .routes
                    .iter()
                    .map(|r| {
                        if r.destination.prefix == 0 {
                            format!("default via {}", r.gateway)
                        } else {
                            format!("{} via {}", r.destination, r.gateway)
                        }
                    })
                    .collect();
                let mark = self
                    .marks
                    .iter()
                    .find(|(n, _)| *n == spec.name)
                    .map(|(_, note)| note.clone());
                let name_width = spec.name.len() as f64 * CHAR * 14.0 / FONT;
                let mut widest =
                    name_width.max(notes.join(" · ").len() as f64 * CHAR * 11.0 / FONT);
                if let Some(mark) = &mark {
                    // On the name's line, right-aligned.
                    widest = widest
                        .max(name_width + 3.0 * CHAR + mark.len() as f64 * CHAR * 11.0 / FONT);
                }
                for row in &rows {
                    widest = widest.max(row_width(row));
                }
                for route in &routes {
                    widest = widest.max((route.len() + 6) as f64 * CHAR * 11.0 / FONT);
                }
                let header = if notes.is_empty() {
                    HEADER_WITHOUT_NOTES
                } else {
                    HEADER
                };
                let height = header
                    + ROW * rows.len() as f64
                    + if routes.is_empty() {
                        PAD / 2.0
                    } else {
                        PAD / 2.0 + FOOTER_LINE * routes.len() as f64 + PAD / 2.0
                    };
                Placed {
                    name: spec.name.clone(),
                    notes,
                    mark,
                    rows,
                    routes,
                    column: columns.get(&spec.name).map(|c| c.0).unwrap_or(0),
                    header,
                    x: 0.0,
                    y: 0.0,
                    width: (widest + 2.0 * PAD).max(MIN_WIDTH).ceil(),
                    height,
                }
            })
            .collect();

        // Column by column: x from the widest box of the columns before it.
        let last = boxes.iter().map(|b| b.column).max().unwrap_or(0);
        let mut x = MARGIN;
        let mut column_heights = Vec::new();
        for column in 0..=last {
            let mut members: Vec<usize> = (0..boxes.len())
                .filter(|&i| boxes[i].column == column)
                .collect();
            members.sort_by_key(|&i| columns.get(&boxes[i].name).map(|c| c.1).unwrap_or(i));
            let width = members.iter().map(|&i| boxes[i].width).fold(0.0, f64::max);
            let mut y = 0.0;
            for &i in &members {
                boxes[i].x = x + (width - boxes[i].width) / 2.0;
                boxes[i].y = y;
                y += boxes[i].height + BOX_GAP;
            }
            column_heights.push((members, (y - BOX_GAP).max(0.0)));
            x += width + COLUMN_GAP;
        }
        let tallest = column_heights.iter().map(|c| c.1).fold(0.0, f64::max);
        for (members, height) in &column_heights {
            let offset = MARGIN + TITLE + (tallest - height) / 2.0;
            for &i in members {
                boxes[i].y += offset;
            }
        }
        let width = boxes.iter().map(|b| b.x + b.width).fold(0.0, f64::max)
            + MARGIN
            + if self.has_loops() { 60.0 } else { 0.0 };
        Layout {
            boxes,
            width: width.max(2.0 * MARGIN + 200.0),
            height: MARGIN + TITLE + tallest + MARGIN,
        }
    }

    fn has_loops(&self) -> bool {
        let columns = self.columns();
        self.topology
            .links()
            .iter()
            .any(|l| columns.get(&l.a.node).map(|c| c.0) == columns.get(&l.b.node).map(|c| c.0))
    }

    /// Each node's column (0 = leftmost) and its order key within the column.
    fn columns(&self) -> HashMap<String, (i32, usize)> {
        let topology = self.topology;
        let names: Vec<&str> = topology.nodes().iter().map(|n| n.name.as_str()).collect();
        // Neighbours in link order, with the interface of the node they hang off.
        let mut neighbours: BTreeMap<&str, Vec<(&str, &str)>> = BTreeMap::new();
        for link in topology.links() {
            if link.a.node == link.b.node {
                continue;
            }
            for (from, to) in [(&link.a, &link.b), (&link.b, &link.a)] {
                let list = neighbours.entry(from.node.as_str()).or_default();
                if !list.iter().any(|(n, _)| *n == to.node) {
                    list.push((to.node.as_str(), from.interface.as_str()));
                }
            }
        }
        let degree = |n: &str| neighbours.get(n).map_or(0, Vec::len);
        let mut placed: HashMap<String, (i32, usize)> = HashMap::new();
        let mut order = 0usize;
        let mut component_offset = 0i32;
        for &start in &names {
            if placed.contains_key(start) {
                continue;
            }
            // This component's nodes, and its hub: the node with most neighbours.
            let mut component = vec![start];
            let mut queue = VecDeque::from([start]);
            while let Some(n) = queue.pop_front() {
                for (m, _) in neighbours.get(n).into_iter().flatten() {
                    if !component.contains(m) {
                        component.push(m);
                        queue.push_back(m);
                    }
                }
            }
            component.sort_by_key(|n| names.iter().position(|x| x == n));
            let hub = component
                .iter()
                .copied()
                .max_by_key(|n| {
                    (
                        degree(n),
                        std::cmp::Reverse(names.iter().position(|x| x == n)),
                    )
                })
                .unwrap_or(start);
            // Hub neighbours, grouped by the bridge (or interface) they hang off.
            let rows = rows_of(topology, hub);
            let group_of = |interface: &str| {
                rows.iter()
                    .find(|r| r.interface == interface)
                    .and_then(|r| r.port_of.clone())
                    .unwrap_or_else(|| interface.to_string())
            };
            let hub_neighbours = neighbours.get(hub).cloned().unwrap_or_default();
            let mut groups: Vec<String> = Vec::new();
            for (_, interface) in &hub_neighbours {
                let g = group_of(interface);
                if !groups.contains(&g) {
                    groups.push(g);
                }
            }
            let default = topology.default_node();
            let left_group = if hub_neighbours.len() < 2 {
                None
            } else if let Some((_, interface)) = hub_neighbours.iter().find(|(n, _)| *n == default)
            {
                Some(group_of(interface))
            } else {
                groups.first().cloned()
            };
            let mut column: HashMap<&str, i32> = HashMap::from([(hub, 0)]);
            let mut key: HashMap<&str, usize> = HashMap::from([(hub, 0)]);
            let mut queue = VecDeque::from([hub]);
            while let Some(n) = queue.pop_front() {
                let c = column[n];
                let base = key[n] * 64;
                for (i, (m, interface)) in neighbours.get(n).into_iter().flatten().enumerate() {
                    if column.contains_key(m) {
                        continue;
                    }
                    let side = if n == hub {
                        if left_group.as_deref() == Some(group_of(interface).as_str()) {
                            -1
                        } else {
                            1
                        }
                    } else if c < 0 {
                        -1
                    } else {
                        1
                    };
                    column.insert(m, c + side);
                    let row = rows_of(topology, n)
                        .iter()
                        .position(|r| r.interface == *interface)
                        .unwrap_or(i);
                    key.insert(m, base + row);
                    queue.push_back(m);
                }
            }
            let min = column.values().copied().min().unwrap_or(0);
            let max = column.values().copied().max().unwrap_or(0);
            for n in &component {
                order += 1;
                let c = column.get(n).copied().unwrap_or(0) - min + component_offset;
                placed.insert(n.to_string(), (c, key.get(n).copied().unwrap_or(order)));
            }
            // Components side by side.
            component_offset += max - min + 1;
        }
        placed
    }
}

/// A node's interfaces: each bridge followed by its ports, then the other veths.
fn rows_of(topology: &Topology, node: &str) -> Vec<Row> {
    let mut bridges = Vec::new();
    let mut others = Vec::new();
    if let Some(spec) = topology.node(node) {
        for bridge in &spec.bridges {
            bridges.push(Row {
                interface: bridge.name.clone(),
                addresses: bridge.addresses.clone(),
                bridge: true,
                port_of: None,
            });
        }
    }
    let mut ports: Vec<Row> = Vec::new();
    for link in topology.links() {
        for end in [&link.a, &link.b] {
            if end.node != node {
                continue;
            }
            let row = Row {
                interface: end.interface.clone(),
                addresses: end.addresses.clone(),
                bridge: false,
                port_of: end.bridge.clone(),
            };
            if row.port_of.is_some() {
                ports.push(row);
            } else {
                others.push(row);
            }
        }
    }
    let mut rows = Vec::new();
    for bridge in bridges {
        let name = bridge.interface.clone();
        rows.push(bridge);
        rows.extend(
            ports
                .iter()
                .filter(|p| p.port_of.as_deref() == Some(name.as_str()))
                .cloned(),
        );
    }
    rows.extend(others);
    rows
}

fn row_text(row: &Row) -> (String, String) {
    let name = if row.bridge {
        format!("{} (bridge)", row.interface)
    } else {
        row.interface.clone()
    };
    let addresses: Vec<String> = row.addresses.iter().map(IpNet::to_string).collect();
    (name, addresses.join(" "))
}

fn row_width(row: &Row) -> f64 {
    let (name, addresses) = row_text(row);
    let indent = if row.port_of.is_some() {
        PORT_INDENT
    } else {
        0.0
    };
    indent + (name.len() + 2 + addresses.len()) as f64 * CHAR
}

fn draw_box(svg: &mut String, b: &Placed) {
    let class = if b.mark.is_some() {
        "node marked"
    } else {
        "node"
    };
    let _ = write!(
        svg,
        r#"<g><rect class="{class}" x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}" rx="8"/>"#,
        b.x, b.y, b.width, b.height
    );
    let _ = write!(
        svg,
        r#"<text class="name" x="{:.1}" y="{:.1}">{}</text>"#,
        b.x + PAD,
        b.y + 19.0,
        escape(&b.name)
    );
    let notes_y = b.y + 35.0;
    if let Some(mark) = &b.mark {
        let _ = write!(
            svg,
            r#"<text class="mark" x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
            b.x + b.width - PAD,
            b.y + 19.0,
            escape(mark)
        );
    }
    if !b.notes.is_empty() {
        let _ = write!(
            svg,
            r#"<text class="note" x="{:.1}" y="{notes_y:.1}">{}</text>"#,
            b.x + PAD,
            escape(&b.notes.join(" · "))
        );
    }
    let mut bridge_y: HashMap<&str, f64> = HashMap::new();
    for (i, row) in b.rows.iter().enumerate() {
        let top = b.y + b.header + ROW * i as f64;
        let baseline = top + ROW / 2.0 + FONT * 0.35;
        let (name, addresses) = row_text(row);
        let mut x = b.x + PAD;
        if row.bridge {
            let _ = write!(
                svg,
                r#"<rect class="bridge" x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}" rx="3"/>"#,
                b.x + PAD / 2.0,
                top + 1.0,
                b.width - PAD,
                ROW - 2.0
            );
            bridge_y.insert(row.interface.as_str(), top + ROW - 1.0);
        }
        if let Some(bridge) = &row.port_of {
            let from = bridge_y.get(bridge.as_str()).copied().unwrap_or(top);
            let tx = x + 4.0;
            let _ = write!(
                svg,
                r#"<path class="tree" d="M{tx:.1} {from:.1} V{:.1} H{:.1}"/>"#,
                top + ROW / 2.0,
                tx + PORT_INDENT - 6.0
            );
            x += PORT_INDENT;
        }
        let _ = write!(
            svg,
            r#"<text x="{x:.1}" y="{baseline:.1}"><tspan class="if">{}</tspan><tspan class="addr" dx="{:.1}">{}</tspan></text>"#,
            escape(&name),
            2.0 * CHAR,
            escape(&addresses)
        );
    }
    let mut y = b.y + b.header + ROW * b.rows.len() as f64 + PAD / 2.0;
    for route in &b.routes {
        y += FOOTER_LINE;
        let _ = write!(
            svg,
            r#"<text class="route" x="{:.1}" y="{:.1}">route {}</text>"#,
            b.x + PAD,
            y - 3.0,
            escape(route)
        );
    }
    svg.push_str("</g>");
}

/// Escapes text for XML content and attribute values.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use netns_fixture_topology::builtin;

    fn overlaps(a: &Placed, b: &Placed) -> bool {
        a.x < b.x + b.width && b.x < a.x + a.width && a.y < b.y + b.height && b.y < a.y + a.height
    }

    #[test]
    fn builtins_lay_out_without_overlap_and_as_the_readme_draws_them() {
        for name in builtin::NAMES {
            let t = builtin::get(name).unwrap();
            let layout = Diagram::new(&t).layout();
            assert_eq!(layout.boxes.len(), t.nodes().len());
            for (i, a) in layout.boxes.iter().enumerate() {
                assert!(a.x >= 0.0 && a.x + a.width <= layout.width, "{name}: {a:?}");
                assert!(
                    a.y >= 0.0 && a.y + a.height <= layout.height,
                    "{name}: {a:?}"
                );
                for b in &layout.boxes[i + 1..] {
                    assert!(!overlaps(a, b), "{name}: {} overlaps {}", a.name, b.name);
                }
            }
        }
        let column = |topology: &str, node: &str| {
            let t = builtin::get(topology).unwrap();
            Diagram::new(&t).columns()[node].0
        };
        // two_servers: client | router | server1, server2.
        assert_eq!(column("two_servers", "client"), 0);
        assert_eq!(column("two_servers", "router"), 1);
        assert_eq!(column("two_servers", "server1"), 2);
        assert_eq!(column("two_servers", "server2"), 2);
        // lan: the bridge's nodes together on the left, the internet on the right.
        assert_eq!(column("lan", "ns1"), 0);
        assert_eq!(column("lan", "ns2"), 0);
        assert_eq!(column("lan", "host"), 1);
        assert_eq!(column("lan", "internet"), 2);
        assert_eq!(column("pair", "ns-1"), 0);
        assert_eq!(column("pair", "ns-2"), 1);
    }

    #[test]
    fn server1_is_drawn_above_server2() {
        let t = builtin::get("two_servers").unwrap();
        let layout = Diagram::new(&t).layout();
        let y = |n: &str| layout.boxes.iter().find(|b| b.name == n).unwrap().y;
        assert!(y("server1") < y("server2"));
    }

    #[test]
    fn svg_names_everything_and_escapes_text() {
        let t = Topology::builder("a<b")
            .node("x&y", |n| n.default_route("10.0.0.1"))
            .node("r", |n| n.forwarding().bridge("br0", &["10.0.0.1/24"]))
            .link(
                ("x&y", "eth0", "10.0.0.2/24"),
                netns_fixture_topology::EndpointSpec::new("r", "p0").bridge("br0"),
            )
            .build()
            .unwrap();
        let svg = Diagram::new(&t).mark("r", "here").to_svg();
        assert!(svg.contains(">lab a&lt;b<"), "{svg}");
        assert!(svg.contains(">x&amp;y<"));
        assert!(svg.contains("br0 (bridge)"));
        assert!(svg.contains("route default via 10.0.0.1"));
        assert!(svg.contains(r#"class="node marked""#));
        assert_eq!(svg.matches("<path class=\"link\"").count(), 1);
        assert_eq!(svg.matches("<g>").count(), svg.matches("</g>").count());
        // Nothing to fetch: the only URL is the SVG namespace.
        assert_eq!(svg.matches("http").count(), 1);
        assert!(!svg.contains("<script"));
    }

    #[test]
    fn disconnected_nodes_get_columns_of_their_own() {
        let t = Topology::builder("islands")
            .node("a", |n| n)
            .node("b", |n| n)
            .node("c", |n| n)
            .link(("a", "e0", "10.0.0.1/24"), ("b", "e0", "10.0.0.2/24"))
            .build()
            .unwrap();
        let columns = Diagram::new(&t).columns();
        assert_eq!(columns["a"].0, 0);
        assert_eq!(columns["b"].0, 1);
        assert_eq!(columns["c"].0, 2);
    }
}
