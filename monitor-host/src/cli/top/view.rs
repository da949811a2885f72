//! Drawing a [`Ui`]: the title line, the panes top to bottom (the focused one with a bright
//! border and its selected row highlighted), the selected row's sparkline, and a help or error
//! line.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Cell, Row, Sparkline, Table, TableState};

use super::{Pane, Ui};
use crate::cli::format::number;

const HELP: &str = "tab/shift-tab: pane  ↑↓ PgUp PgDn Home End: rows  q/Esc/Ctrl-C: quit";

/// Draws `ui` on the whole frame.
pub fn draw(frame: &mut Frame<'_>, ui: &Ui) {
    let focused = ui.model.panes.get(ui.focus);
    let selected_series = focused.and_then(|p| {
        let row = ui.selected.get(ui.focus).copied().unwrap_or(0);
        Some((
            p.rows.get(row)?.first()?.clone(),
            p.series.get(row)?.clone(),
        ))
    });
    let mut constraints = vec![Constraint::Length(1)];
    constraints.extend(
        ui.model
            .panes
            .iter()
            .map(|p| Constraint::Fill(p.weight.max(1))),
    );
    if selected_series.is_some() {
        constraints.push(Constraint::Length(5));
    }
    constraints.push(Constraint::Length(1));
    let areas = Layout::vertical(constraints).split(frame.area());
    let title =
        Line::from(ui.model.title.as_str()).style(Style::new().add_modifier(Modifier::BOLD));
    frame.render_widget(title, areas[0]);
    for (i, pane) in ui.model.panes.iter().enumerate() {
        let selected = ui.selected.get(i).copied().unwrap_or(0);
        draw_pane(
            frame,
            areas[1 + i],
            pane,
            (i == ui.focus).then_some(selected),
        );
    }
    let mut next = 1 + ui.model.panes.len();
    if let Some((name, values)) = selected_series {
        draw_sparkline(frame, areas[next], &name, &values);
        next += 1;
    }
    let last = match &ui.error {
        Some(e) => Line::from(format!("refresh failed: {e}")).style(Style::new().fg(Color::Red)),
        None => Line::from(HELP).style(Style::new().add_modifier(Modifier::DIM)),
    };
    frame.render_widget(last, areas[next]);
}

fn draw_pane(frame: &mut Frame<'_>, area: Rect, pane: &Pane, selected: Option<usize>) {
    let border = if selected.is_some() {
        Style::new().fg(Color::Cyan).add_modifier(Modifier::BOLD)
    } else {
        Style::new().add_modifier(Modifier::DIM)
    };
    let block = Block::new()
        .borders(Borders::ALL)
        .border_style(border)
        .title(format!(" {} ", pane.title));
    // Each column as wide as its widest cell; the last takes what is left.
    let mut widths: Vec<u16> = pane
        .header
        .iter()
        .map(|h| h.chars().count() as u16)
        .collect();
    for row in &pane.rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count().min(60) as u16);
        }
    }
    let n = widths.len();
    let constraints = widths.iter().enumerate().map(|(i, &w)| {
        if i + 1 == n {
            Constraint::Fill(1)
        } else {
            Constraint::Length(w)
        }
    });
    let header = Row::new(pane.header.iter().map(|h| Cell::from(*h)))
        .style(Style::new().add_modifier(Modifier::BOLD));
    let rows = pane
        .rows
        .iter()
        .map(|r| Row::new(r.iter().map(|c| Cell::from(c.as_str()))));
    let table = Table::new(rows, constraints)
        .header(header)
        .block(block)
        .column_spacing(2)
        .row_highlight_style(Style::new().add_modifier(Modifier::REVERSED));
    let mut state = TableState::default().with_selected(selected.filter(|_| !pane.rows.is_empty()));
    frame.render_stateful_widget(table, area, &mut state);
}

fn draw_sparkline(frame: &mut Frame<'_>, area: Rect, name: &str, values: &[f64]) {
    let finite = values.iter().copied().filter(|v| v.is_finite());
    let (lo, hi) = finite.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    // Scaled to 1..=100 so the lowest point still shows; a flat series is a flat line.
    let data: Vec<u64> = values
        .iter()
        .map(|&v| {
            if !v.is_finite() {
                0
            } else if hi > lo {
                1 + ((v - lo) / (hi - lo) * 99.0).round() as u64
            } else {
                50
            }
        })
        .collect();
    let title = if data.is_empty() {
        format!(" {name}: no points yet ")
    } else {
        format!(
            " {name}: {} points, {} .. {} ",
            data.len(),
            number(lo),
            number(hi)
        )
    };
    let sparkline = Sparkline::default()
        .block(Block::new().borders(Borders::ALL).title(title))
        .data(&data)
        .max(100)
        .style(Style::new().fg(Color::Green));
    frame.render_widget(sparkline, area);
}

#[cfg(test)]
mod tests {
    use ratatui::Terminal;
    use ratatui::backend::TestBackend;

    use super::*;
    use crate::cli::top::host;
    use crate::cli::view::{Alert, Cycle, Heal, HostSnapshot, Plugin, Series};

    fn screen(ui: &Ui, width: u16, height: u16) -> Vec<String> {
        let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
        terminal.draw(|f| draw(f, ui)).unwrap();
        let buffer = terminal.backend().buffer();
        (0..height)
            .map(|y| {
                (0..width)
                    .map(|x| buffer[(x, y)].symbol())
                    .collect::<String>()
            })
            .collect()
    }

    fn snapshot() -> HostSnapshot {
        let series = |name: &str, points: &[f64]| Series {
            name: name.into(),
            labels: [("collector".to_owned(), "sys".to_owned())].into(),
            value: *points.last().unwrap(),
            timestamp_ms: 0,
            points: points
                .iter()
                .enumerate()
                .map(|(i, &v)| (i as u64 * 1000, v))
                .collect(),
        };
        HostSnapshot {
            host: "web-1".into(),
            cycles: 12,
            last_cycle: Some(Cycle {
                at_ms: 58_000,
                ..Cycle::default()
            }),
            series: vec![
                series("flat", &[5.0, 5.0, 5.0]),
                series("cpu", &[0.0, 50.0, 100.0]),
            ],
            alerts: vec![Alert {
                alert: "high_cpu".into(),
                state: "firing".into(),
                value: 100.0,
                firing_since_ms: Some(0),
                ..Alert::default()
            }],
            healing: vec![Heal {
                strategy: "restart".into(),
                alert: "high_cpu".into(),
                attempt: 1,
                success: true,
                message: "restarted".into(),
                started_ms: 30_000,
                ..Heal::default()
            }],
            plugins: vec![Plugin {
                kind: "collector".into(),
                name: "sys".into(),
                plugin: "system".into(),
                ..Plugin::default()
            }],
        }
    }

    #[test]
    fn the_host_dashboard_shows_every_pane_from_a_fixed_model() {
        let model = host::model(
            &snapshot(),
            "http://h:1",
            60_000,
            std::time::Duration::from_secs(1),
        );
        let lines = screen(&Ui::new(model), 100, 40);
        let text = lines.join("\n");
        assert!(lines[0].starts_with("monitor-host web-1 at http://h:1: 12 cycles, last cycle 2s ago; 1 firing, 0 pending; every 1s"), "{text}");
        assert!(text.contains(" plugins (1) "), "{text}");
        let plugin_row = lines
            .iter()
            .find(|l| l.contains("collector  sys"))
            .unwrap_or_else(|| panic!("{text}"));
        assert!(
            plugin_row.contains("system") && plugin_row.contains(" ok "),
            "{plugin_row}"
        );
        let alert_row = lines
            .iter()
            .find(|l| l.contains("high_cpu  firing"))
            .unwrap_or_else(|| panic!("{text}"));
        assert!(
            alert_row.contains("1m00s") && alert_row.contains("100"),
            "{alert_row}"
        );
        // The moving series comes before the flat one, with its sparkline; the collector label
        // is left out.
        let cpu = lines
            .iter()
            .position(|l| l.contains("│cpu "))
            .unwrap_or_else(|| panic!("{text}"));
        let flat = lines
            .iter()
            .position(|l| l.contains("│flat "))
            .unwrap_or_else(|| panic!("{text}"));
        assert!(cpu < flat, "{text}");
        assert!(lines[cpu].contains("▁▅█"), "{}", lines[cpu]);
        assert!(
            text.contains("1970-01-01 00:00:30  restart   high_cpu  1        success  restarted"),
            "{text}"
        );
        assert!(lines[39].starts_with("tab/shift-tab: pane"), "{text}");
    }

    #[test]
    fn the_focused_pane_selects_a_row_and_draws_its_sparkline() {
        let model = host::model(
            &snapshot(),
            "http://h:1",
            60_000,
            std::time::Duration::from_secs(1),
        );
        let mut ui = Ui::new(model);
        // Plugins, alerts, then series: no sparkline box until the series pane has the focus.
        assert!(!screen(&ui, 100, 40).join("\n").contains("3 points"));
        let tab =
            ratatui::crossterm::event::KeyEvent::from(ratatui::crossterm::event::KeyCode::Tab);
        ui.key(tab);
        ui.key(tab);
        let text = screen(&ui, 100, 40).join("\n");
        assert!(text.contains(" cpu: 3 points, 0 .. 100 "), "{text}");
        ui.update(Err("cannot reach http://h:1/api/snapshot".into()));
        let lines = screen(&ui, 100, 40);
        assert!(
            lines[39].starts_with("refresh failed: cannot reach http://h:1/api/snapshot"),
            "{}",
            lines.join("\n")
        );
    }
}
