//! The HTTP routes, read from the `google.api.http` annotations in the
//! descriptor set at start: one per binding, additional bindings included.
//! Nothing here names a route by hand.

use anyhow::{Context, bail};
use http::Method;
use prost_reflect::{DescriptorPool, MethodDescriptor, Value};

/// One HTTP binding of an RPC.
#[derive(Debug, Clone)]
pub struct HttpRule {
    pub method: Method,
    /// The path template, such as `/api/v1/workspaces/{id}`.
    pub path: String,
    /// The request fields bound to path variables.
    pub path_fields: Vec<String>,
    /// `*`: the whole body is the request; empty: no body.
    pub body: String,
    pub rpc: MethodDescriptor,
}

impl HttpRule {
    /// `/workspace.v1.WorkspaceService/CreateWorkspace`.
    pub fn grpc_path(&self) -> String {
        format!(
            "/{}/{}",
            self.rpc.parent_service().full_name(),
            self.rpc.name()
        )
    }

    /// Create methods answer 201 Created, as the REST APIs do.
    pub fn success_status(&self) -> http::StatusCode {
        if self.method == Method::POST && self.rpc.name().starts_with("Create") {
            http::StatusCode::CREATED
        } else {
            http::StatusCode::OK
        }
    }
}

/// Every binding of every method of every service in `pool` that carries a
/// `google.api.http` option.
pub fn http_rules(pool: &DescriptorPool) -> anyhow::Result<Vec<HttpRule>> {
    let extension = pool
        .get_extension_by_name("google.api.http")
        .context("the descriptor set lacks google/api/annotations.proto")?;
    let mut rules = Vec::new();
    for service in pool.services() {
        for rpc in service.methods() {
            let options = rpc.options();
            if !options.has_extension(&extension) {
                continue;
            }
            let Value::Message(rule) = options.get_extension(&extension).into_owned() else {
                bail!("{}: google.api.http is not a message", rpc.full_name());
            };
            rules.push(binding(&rpc, &rule)?);
            if let Some(Value::List(additional)) = rule
                .get_field_by_name("additional_bindings")
                .map(|v| v.into_owned())
            {
                for extra in additional {
                    let Value::Message(extra) = extra else {
                        continue;
                    };
                    rules.push(binding(&rpc, &extra)?);
                }
            }
        }
    }
    Ok(rules)
}

fn binding(
    rpc: &MethodDescriptor,
    rule: &prost_reflect::DynamicMessage,
) -> anyhow::Result<HttpRule> {
    let text = |name: &str| match rule.get_field_by_name(name).as_deref() {
        Some(Value::String(s)) => s.clone(),
        _ => String::new(),
    };
    let (method, path) = [
        (Method::GET, "get"),
        (Method::POST, "post"),
        (Method::PUT, "put"),
        (Method::DELETE, "delete"),
        (Method::PATCH, "patch"),
    ]
    .into_iter()
    .find_map(|(method, field)| {
        let path = text(field);
        (!path.is_empty()).then_some((method, path))
    })
    .with_context(|| format!("{}: a google.api.http rule without a path", rpc.full_name()))?;
    let mut path_fields = Vec::new();
    for segment in path.split('/') {
        if let Some(variable) = segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            let field = variable.split('=').next().unwrap_or(variable).to_owned();
            if rpc.input().get_field_by_name(&field).is_none() {
                bail!(
                    "{}: path variable {{{field}}} is not a request field",
                    rpc.full_name()
                );
            }
            path_fields.push(field);
        }
    }
    // `{id=*}` and `{id}` are the same single-segment variable.
    let path = path
        .split('/')
        .map(|segment| match segment.split_once('=') {
            Some((name, "*}")) => format!("{name}}}"),
            _ => segment.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("/");
    Ok(HttpRule {
        method,
        path,
        path_fields,
        body: text("body"),
        rpc: rpc.clone(),
    })
}
