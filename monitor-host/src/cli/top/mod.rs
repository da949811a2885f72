//! `top` and `app dashboard`: a live terminal dashboard. A [`Model`] is what one refresh shows
//! (titled panes of rows); [`Ui`] adds what the keyboard changed (the focused pane, the selected
//! rows); [`view`] draws both, so rendering is tested on a fixed model with ratatui's
//! `TestBackend`, and [`live`] runs the terminal.

mod host;
mod view;

use std::time::Duration;

use clap::Args;
use ratatui::crossterm::event::{self, Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use super::Target;

/// `top`.
#[derive(Debug, Args)]
pub struct TopArgs {
    #[command(flatten)]
    target: Target,
    /// Time between refreshes, e.g. `1s`, `500ms`.
    #[arg(long, default_value = "1s", value_parser = parse_interval)]
    interval: Duration,
}

/// A refresh interval: a duration such as `1s` or `250ms`, at least 100 ms.
pub fn parse_interval(text: &str) -> Result<Duration, String> {
    let d = promql_parser::util::parse_duration(text).map_err(|e| e.to_string())?;
    if d < Duration::from_millis(100) {
        return Err(format!("{text}: refresh at most every 100ms"));
    }
    Ok(d)
}

/// What one refresh shows.
#[derive(Debug, Clone, Default)]
pub struct Model {
    /// The first line.
    pub title: String,
    /// Top to bottom.
    pub panes: Vec<Pane>,
}

/// A titled table.
#[derive(Debug, Clone, Default)]
pub struct Pane {
    /// Above the table.
    pub title: String,
    /// Column names.
    pub header: Vec<&'static str>,
    /// Cells, one `Vec` per row, as many as `header`.
    pub rows: Vec<Vec<String>>,
    /// Per row, values drawn as a sparkline under the panes when the row is selected; empty when
    /// the pane has none.
    pub series: Vec<Vec<f64>>,
    /// Share of the height.
    pub weight: u16,
}

/// A model and the keyboard's state.
#[derive(Debug, Default)]
pub struct Ui {
    model: Model,
    focus: usize,
    selected: Vec<usize>,
    error: Option<String>,
}

/// Whether to go on after a key.
#[derive(Debug, PartialEq, Eq)]
pub enum Flow {
    Continue,
    Quit,
}

impl Ui {
    /// A UI showing `model`.
    pub fn new(model: Model) -> Self {
        let mut ui = Self::default();
        ui.update(Ok(model));
        ui
    }

    /// Takes a refresh: a new model (selections kept, clamped), or an error shown on the last
    /// line over the previous model.
    pub fn update(&mut self, refresh: Result<Model, String>) {
        match refresh {
            Ok(model) => {
                self.selected.resize(model.panes.len(), 0);
                for (s, p) in self.selected.iter_mut().zip(&model.panes) {
                    *s = (*s).min(p.rows.len().saturating_sub(1));
                }
                self.focus = self.focus.min(model.panes.len().saturating_sub(1));
                self.model = model;
                self.error = None;
            }
            Err(e) => self.error = Some(e),
        }
    }

    /// Tab and Shift-Tab move between panes, arrows (or j/k), PageUp/PageDown, Home/End move
    /// the selection; `q`, Esc and Ctrl-C quit.
    pub fn key(&mut self, key: KeyEvent) -> Flow {
        if key.kind == KeyEventKind::Release {
            return Flow::Continue;
        }
        let panes = self.model.panes.len().max(1);
        let rows = self.model.panes.get(self.focus).map_or(0, |p| p.rows.len());
        let last = rows.saturating_sub(1);
        let sel = self.selected.get(self.focus).copied().unwrap_or(0);
        let new = match key.code {
            KeyCode::Char('q') | KeyCode::Esc => return Flow::Quit,
            KeyCode::Char('c') if key.modifiers.contains(KeyModifiers::CONTROL) => {
                return Flow::Quit;
            }
            KeyCode::Tab => {
                self.focus = (self.focus + 1) % panes;
                return Flow::Continue;
            }
            KeyCode::BackTab => {
                self.focus = (self.focus + panes - 1) % panes;
                return Flow::Continue;
            }
            KeyCode::Down | KeyCode::Char('j') => (sel + 1).min(last),
            KeyCode::Up | KeyCode::Char('k') => sel.saturating_sub(1),
            KeyCode::PageDown => (sel + 10).min(last),
            KeyCode::PageUp => sel.saturating_sub(10),
            KeyCode::Home => 0,
            KeyCode::End => last,
            _ => sel,
        };
        if let Some(s) = self.selected.get_mut(self.focus) {
            *s = new;
        }
        Flow::Continue
    }
}

/// Restores the terminal when dropped, also when unwinding from a panic (ratatui's panic hook
/// restores it before the message is printed).
struct Screen(ratatui::DefaultTerminal);

impl Drop for Screen {
    fn drop(&mut self) {
        ratatui::restore();
    }
}

/// Runs a dashboard: `fetch` once (its error ends the command before the screen changes), then
/// again every `interval` on its own thread while the keyboard is answered.
pub fn live(
    interval: Duration,
    mut fetch: impl FnMut() -> anyhow::Result<Model> + Send + 'static,
) -> anyhow::Result<()> {
    let first = fetch()?;
    let (tx, rx) = crossbeam_channel::bounded(1);
    std::thread::Builder::new()
        .name("top-refresh".into())
        .spawn(move || {
            loop {
                std::thread::sleep(interval);
                // The receiver is gone once the dashboard quits: stop asking.
                if tx.send(fetch().map_err(|e| format!("{e:#}"))).is_err() {
                    break;
                }
            }
        })?;
    let mut ui = Ui::new(first);
    let mut screen = Screen(ratatui::try_init()?);
    loop {
        while let Ok(refresh) = rx.try_recv() {
            ui.update(refresh);
        }
        screen.0.draw(|frame| view::draw(frame, &ui))?;
        if event::poll(Duration::from_millis(100))?
            && let Event::Key(key) = event::read()?
            && ui.key(key) == Flow::Quit
        {
            break;
        }
    }
    Ok(())
}

/// `top`: the host's dashboard.
pub fn host(args: &TopArgs) -> anyhow::Result<()> {
    let client = args.target.client()?;
    let interval = args.interval;
    live(interval, move || {
        let snapshot = client.json("/api/snapshot")?;
        Ok(host::model(
            &snapshot,
            client.base(),
            super::format::now_ms(),
            interval,
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }

    fn pane(rows: usize) -> Pane {
        Pane {
            rows: (0..rows).map(|i| vec![i.to_string()]).collect(),
            ..Pane::default()
        }
    }

    #[test]
    fn keys_move_focus_and_selection_and_quit() {
        let mut ui = Ui::new(Model {
            title: String::new(),
            panes: vec![pane(3), pane(1)],
        });
        assert_eq!(ui.key(key(KeyCode::Down)), Flow::Continue);
        ui.key(key(KeyCode::Down));
        ui.key(key(KeyCode::Down));
        assert_eq!(ui.selected, [2, 0], "clamped to the last row");
        ui.key(key(KeyCode::Tab));
        assert_eq!(ui.focus, 1);
        ui.key(key(KeyCode::Tab));
        assert_eq!(ui.focus, 0, "wraps around");
        ui.key(key(KeyCode::BackTab));
        assert_eq!(ui.focus, 1);
        ui.key(key(KeyCode::Up));
        assert_eq!(ui.selected, [2, 0]);
        assert_eq!(ui.key(key(KeyCode::Char('q'))), Flow::Quit);
        assert_eq!(ui.key(key(KeyCode::Esc)), Flow::Quit);
        let ctrl_c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
        assert_eq!(ui.key(ctrl_c), Flow::Quit);
        assert_eq!(ui.key(key(KeyCode::Char('c'))), Flow::Continue);
    }

    #[test]
    fn a_refresh_keeps_selections_within_the_new_rows() {
        let mut ui = Ui::new(Model {
            title: String::new(),
            panes: vec![pane(5)],
        });
        ui.key(key(KeyCode::End));
        assert_eq!(ui.selected, [4]);
        ui.update(Ok(Model {
            title: String::new(),
            panes: vec![pane(2)],
        }));
        assert_eq!(ui.selected, [1]);
        ui.update(Err("cannot reach".into()));
        assert_eq!(ui.error.as_deref(), Some("cannot reach"));
        assert_eq!(ui.model.panes[0].rows.len(), 2, "the last model stays");
    }

    #[test]
    fn intervals() {
        assert_eq!(parse_interval("2s"), Ok(Duration::from_secs(2)));
        assert!(parse_interval("10ms").is_err());
        assert!(parse_interval("soon").is_err());
    }
}
