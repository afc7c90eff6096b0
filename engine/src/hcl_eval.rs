//! Reads a Terraform root module with hcl-rs and evaluates what the sandbox needs: variables,
//! locals, provider default tags, resources (in declaration order) and outputs.

use std::collections::BTreeMap;

use hcl::eval::{Context, Evaluate};
use hcl::{Body, Expression};
use serde_json::{Map, Value};

use super::EngineError;
use super::sandbox::schema::Val;
use crate::catalog::ModuleBundle;

/// A parsed root module.
pub struct Module {
    pub variables: Map<String, Value>,
    pub locals: Map<String, Value>,
    pub default_tags: Map<String, Value>,
    pub resources: Vec<ResourceDecl>,
    pub outputs: Vec<(String, Expression)>,
}

/// A `resource "type" "name" { ... }` block.
pub struct ResourceDecl {
    pub resource_type: String,
    pub name: String,
    pub body: Body,
}

impl ResourceDecl {
    pub fn address(&self) -> String {
        format!("{}.{}", self.resource_type, self.name)
    }
}

fn invalid(msg: impl Into<String>) -> EngineError {
    EngineError::InvalidModule(msg.into())
}

impl Module {
    /// Parses every `.tf` file, binds variables from `terraform.tfvars.json` over defaults and
    /// evaluates locals and the provider's default tags.
    pub fn load(bundle: &ModuleBundle) -> Result<Self, EngineError> {
        let tfvars: Map<String, Value> = match bundle.files.get("terraform.tfvars.json") {
            Some(text) => serde_json::from_str(text).map_err(|e| invalid(format!("terraform.tfvars.json: {e}")))?,
            None => Map::new(),
        };
        let mut bodies = Vec::new();
        for (file, text) in bundle.files.iter().filter(|(f, _)| f.ends_with(".tf")) {
            bodies.push(hcl::parse(text).map_err(|e| invalid(format!("{file}: {e}")))?);
        }

        let mut variables = Map::new();
        for block in bodies.iter().flat_map(|b| b.blocks()).filter(|b| b.identifier() == "variable") {
            let name = label(block, 0)?;
            let value = match tfvars.get(&name) {
                Some(v) => v.clone(),
                None => match block.body().attributes().find(|a| a.key() == "default") {
                    Some(a) => {
                        eval(a.expr(), &Context::new()).map_err(|e| invalid(format!("variable {name} default: {e}")))?
                    }
                    None => return Err(invalid(format!("variable '{name}' has no value and no default"))),
                },
            };
            variables.insert(name, value);
        }
        if let Some(unknown) = tfvars.keys().find(|k| !variables.contains_key(*k)) {
            return Err(invalid(format!("terraform.tfvars.json sets '{unknown}', which no variable declares")));
        }

        // Locals may refer to each other in any order: evaluate until nothing changes.
        let mut pending: Vec<(String, Expression)> = bodies
            .iter()
            .flat_map(|b| b.blocks())
            .filter(|b| b.identifier() == "locals")
            .flat_map(|b| b.body().attributes().map(|a| (a.key().to_string(), a.expr().clone())).collect::<Vec<_>>())
            .collect();
        let mut locals = Map::new();
        while !pending.is_empty() {
            let ctx = context(&variables, &locals, &BTreeMap::new())?;
            let before = pending.len();
            let mut still = Vec::new();
            for (name, expr) in pending {
                match eval(&expr, &ctx) {
                    Ok(v) => {
                        locals.insert(name, v);
                    }
                    Err(e) => still.push((name, expr, e)),
                }
            }
            if still.len() == before {
                let (name, _, e) = &still[0];
                return Err(invalid(format!("local.{name}: {e}")));
            }
            pending = still.into_iter().map(|(n, x, _)| (n, x)).collect();
        }

        let ctx = context(&variables, &locals, &BTreeMap::new())?;
        let mut default_tags = Map::new();
        for provider in bodies.iter().flat_map(|b| b.blocks()).filter(|b| b.identifier() == "provider") {
            for dt in provider.body().blocks().filter(|b| b.identifier() == "default_tags") {
                let Some(tags) = dt.body().attributes().find(|a| a.key() == "tags") else { continue };
                if let Value::Object(m) = eval(tags.expr(), &ctx).map_err(|e| invalid(format!("default_tags: {e}")))? {
                    default_tags.extend(m);
                }
            }
        }

        let mut resources = Vec::new();
        let mut outputs = Vec::new();
        for body in &bodies {
            for block in body.blocks() {
                match block.identifier() {
                    "resource" => resources.push(ResourceDecl {
                        resource_type: label(block, 0)?,
                        name: label(block, 1)?,
                        body: block.body().clone(),
                    }),
                    "data" => return Err(invalid("data sources are not supported by the sandbox engine")),
                    "output" => {
                        let expr = block
                            .body()
                            .attributes()
                            .find(|a| a.key() == "value")
                            .ok_or_else(|| {
                                invalid(format!("output {} has no value", label(block, 0).unwrap_or_default()))
                            })?
                            .expr()
                            .clone();
                        outputs.push((label(block, 0)?, expr));
                    }
                    _ => {}
                }
            }
        }
        if resources.is_empty() {
            return Err(invalid("the module declares no resources"));
        }
        Ok(Module { variables, locals, default_tags, resources, outputs })
    }

    /// Evaluation context with `var`, `local` and the given resources (`type -> name -> attrs`).
    pub fn context(&self, resources: &BTreeMap<String, Map<String, Value>>) -> Result<Context<'static>, EngineError> {
        context(&self.variables, &self.locals, resources)
    }
}

/// Evaluates a block body into Terraform's shape: attributes by name, nested blocks as lists
/// of objects. What cannot be evaluated yet (it refers to resources not created) is unknown.
pub fn eval_config(body: &Body, ctx: &Context) -> Val {
    let mut out = BTreeMap::new();
    for attr in body.attributes() {
        out.insert(attr.key().to_string(), eval_partial(attr.expr(), ctx));
    }
    for block in body.blocks() {
        let item = eval_config(block.body(), ctx);
        match out.entry(block.identifier().to_string()).or_insert_with(|| Val::List(vec![])) {
            Val::List(items) => items.push(item),
            other => *other = Val::List(vec![item]),
        }
    }
    Val::Map(out)
}

/// Evaluates what it can: a list or object literal keeps its known members, like Terraform
/// (`[aws_security_group.this.id]` is a list of one unknown, not an unknown list).
fn eval_partial(expr: &Expression, ctx: &Context) -> Val {
    match eval(expr, ctx) {
        Ok(v) => Val::from_json(&v),
        Err(_) => match expr {
            Expression::Array(items) => Val::List(items.iter().map(|i| eval_partial(i, ctx)).collect()),
            _ => Val::Unknown,
        },
    }
}

/// Evaluates one expression to JSON.
pub fn eval(expr: &Expression, ctx: &Context) -> Result<Value, String> {
    let v = expr.evaluate(ctx).map_err(|e| e.to_string())?;
    serde_json::to_value(&v).map_err(|e| e.to_string())
}

/// The resources an expression refers to, as Terraform lists them in a plan's configuration
/// (`aws_s3_bucket.this.id` gives "aws_s3_bucket.this.id" and "aws_s3_bucket.this"). Only
/// references to managed resources (`type.name...`) are listed; `var`, `local` and the like
/// are left out.
pub fn references(expr: &Expression, out: &mut Vec<String>) {
    use hcl::expr::{Operation, TraversalOperator};
    const NOT_RESOURCES: [&str; 9] = ["var", "local", "data", "module", "each", "count", "path", "self", "terraform"];
    match expr {
        Expression::Traversal(t) => {
            if let Expression::Variable(root) = &t.expr {
                let root = root.as_str();
                let mut attrs = t.operators.iter().map_while(|op| match op {
                    TraversalOperator::GetAttr(id) => Some(id.as_str().to_string()),
                    _ => None,
                });
                if !NOT_RESOURCES.contains(&root)
                    && let Some(name) = attrs.next()
                {
                    let address = format!("{root}.{name}");
                    if let Some(attr) = attrs.next() {
                        out.push(format!("{address}.{attr}"));
                    }
                    out.push(address);
                }
            } else {
                references(&t.expr, out);
            }
            for op in &t.operators {
                if let TraversalOperator::Index(e) = op {
                    references(e, out);
                }
            }
        }
        Expression::Array(items) => items.iter().for_each(|e| references(e, out)),
        Expression::Object(o) => o.values().for_each(|e| references(e, out)),
        Expression::TemplateExpr(t) => {
            if let Ok(template) = hcl::Template::from_expr(t) {
                for element in template.elements() {
                    if let hcl::template::Element::Interpolation(i) = element {
                        references(&i.expr, out);
                    }
                }
            }
        }
        Expression::FuncCall(f) => f.args.iter().for_each(|e| references(e, out)),
        Expression::Parenthesis(e) => references(e, out),
        Expression::Conditional(c) => {
            [&c.cond_expr, &c.true_expr, &c.false_expr].into_iter().for_each(|e| references(e, out))
        }
        Expression::Operation(op) => match op.as_ref() {
            Operation::Unary(u) => references(&u.expr, out),
            Operation::Binary(b) => {
                references(&b.lhs_expr, out);
                references(&b.rhs_expr, out);
            }
        },
        Expression::ForExpr(f) => {
            references(&f.collection_expr, out);
            references(&f.value_expr, out);
        }
        _ => {}
    }
}

fn context(
    variables: &Map<String, Value>,
    locals: &Map<String, Value>,
    resources: &BTreeMap<String, Map<String, Value>>,
) -> Result<Context<'static>, EngineError> {
    let mut ctx = Context::new();
    let to_hcl = |v: &Map<String, Value>| hcl::to_value(Value::Object(v.clone())).map_err(|e| invalid(e.to_string()));
    ctx.declare_var("var", to_hcl(variables)?);
    ctx.declare_var("local", to_hcl(locals)?);
    for (ty, by_name) in resources {
        ctx.declare_var(ty.clone(), to_hcl(by_name)?);
    }
    Ok(ctx)
}

fn label(block: &hcl::Block, i: usize) -> Result<String, EngineError> {
    block
        .labels()
        .get(i)
        .map(|l| l.as_str().to_string())
        .ok_or_else(|| invalid(format!("{} block is missing label {}", block.identifier(), i + 1)))
}
