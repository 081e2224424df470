//! Graphite render library: target parsing, evaluation of the graphite-web
//! 1.1.10 function subset that Grafana relies on, and JSON rendering.
//!
//! The caller drives the flow in two phases so that fetching can be
//! asynchronous while evaluation stays synchronous and pure:
//! `target::parse` -> `target::paths` (fetch each request) ->
//! `eval::evaluate` -> `render::render_json`.

pub mod eval;
mod format;
pub mod glob;
pub mod regex;
pub mod render;
pub mod series;
pub mod target;
pub mod time;
pub mod wire;
