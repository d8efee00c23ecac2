//! A trailing slash on the routes of a FastAPI service's dialect.

use axum::response::{IntoResponse, Response};

use super::{dialect::Dialect, rules::HttpRule};

/// The routes that speak a FastAPI service's dialect (seeds 000 and
/// 001): FastAPI answers their path with a trailing slash by a
/// redirect to the path without it, and so does the service.
pub(super) fn fastapi_paths(rules: &[HttpRule], dialects: &[Dialect]) -> Vec<String> {
    let mut paths: Vec<String> = rules
        .iter()
        .zip(dialects)
        .filter(|(rule, dialect)| {
            matches!(dialect, Dialect::Seed000 | Dialect::Seed001) && !rule.path.contains('{')
        })
        .map(|(rule, _)| rule.path.clone())
        .collect();
    paths.sort();
    paths.dedup();
    paths
}

/// FastAPI's answer to a path with a trailing slash: 307 Temporary
/// Redirect (the method and body are sent again) to `path`, the query kept.
pub(super) fn redirect(path: &str, query: Option<&str>) -> Response {
    let location = match query {
        Some(query) => format!("{path}?{query}"),
        None => path.to_owned(),
    };
    (
        http::StatusCode::TEMPORARY_REDIRECT,
        [(http::header::LOCATION, location)],
    )
        .into_response()
}
