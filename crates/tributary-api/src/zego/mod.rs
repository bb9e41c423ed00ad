//! The ZEGO server API v2 dialect: `/?Action=…&AppId=…&Signature=…`.
//!
//! A translation only: wire parameters in, control-plane calls out, errors mapped to the
//! vendor's codes. Every reply is HTTP 200 with the JSON envelope and a fresh RequestId
//! (also logged), whatever went wrong.

pub mod action;
pub mod codes;
pub mod envelope;
pub mod gateway;
mod media;
mod members;
mod mix;
pub mod params;
mod room;
pub mod signature;
mod spread;

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, Method, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::Value;
use tracing::{info, warn};

pub use action::Action;
use codes::ZegoError;
use envelope::{Data, envelope, new_request_id};
use gateway::{Gateway, parse_action};
use params::Params;

use crate::cluster::{Forward, Peer, Via};
use crate::control::{AppRuntime, ControlPlane};
use crate::mixing::MixControl;

/// The largest POST body accepted. The biggest legitimate one (a StartMix with nine
/// inputs, images and 4000 bytes of user data) is far smaller.
pub const BODY_LIMIT: usize = 1 << 20;

pub struct ZegoApi {
    control: Arc<ControlPlane>,
    gateway: Arc<Gateway>,
    mixing: Option<Arc<MixControl>>,
}

impl ZegoApi {
    /// `mixing`: None on a node without a media engine (the mix actions then say so).
    pub fn new(
        control: Arc<ControlPlane>,
        mixing: Option<Arc<MixControl>>,
        rate_limits_off: bool,
    ) -> Arc<Self> {
        let gateway = Arc::new(Gateway::new(&control, rate_limits_off, control.now_ms()));
        Arc::new(ZegoApi {
            control,
            gateway,
            mixing,
        })
    }
}

impl ZegoApi {
    /// This node's cluster, when it shares its store with others.
    pub fn cluster(&self) -> Option<&Arc<crate::cluster::Cluster>> {
        self.mixing.as_ref().and_then(|m| m.cluster())
    }

    /// The per-app rate limiters, for the other dialect to count against the same budgets.
    pub fn gateway(&self) -> Arc<Gateway> {
        self.gateway.clone()
    }
}

/// One authenticated call, as the action handlers see it.
pub(crate) struct Call<'a> {
    api: &'a ZegoApi,
    app: &'a Arc<AppRuntime>,
    params: &'a Params,
    now_ms: u64,
    /// A client's call may start a task on another node; a forwarded one runs here.
    via: Via,
}

impl Call<'_> {
    fn control(&self) -> &ControlPlane {
        &self.api.control
    }
}

/// A required, non-empty parameter.
pub(crate) fn required<'p>(p: &'p Params, key: &str, code: u64) -> Result<&'p str, ZegoError> {
    p.non_empty(key)
        .ok_or_else(|| ZegoError::new(code, format!("{key} is required")))
}

/// The router for `/` (GET and POST). `https://host?Action=` arrives as `/?Action=` too.
pub fn router(api: Arc<ZegoApi>) -> Router {
    Router::new()
        .route("/", get(handle).post(handle))
        .with_state(api)
}

async fn handle(
    State(api): State<Arc<ZegoApi>>,
    method: Method,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Body,
) -> Response {
    let bytes = axum::body::to_bytes(body, BODY_LIMIT).await.ok();
    respond(
        &api,
        method,
        &headers,
        query.as_deref().unwrap_or(""),
        bytes,
        Via::Client,
    )
    .await
}

/// Answers one request of this dialect. `bytes` is the body, `None` when it could not be
/// read within [`BODY_LIMIT`]; `headers` are sent on with it when another node answers.
pub async fn respond(
    api: &Arc<ZegoApi>,
    method: Method,
    headers: &HeaderMap,
    raw_query: &str,
    bytes: Option<axum::body::Bytes>,
    via: Via,
) -> Response {
    let request_id = new_request_id();
    let query = Params::from_query(raw_query);
    let incoming = Incoming {
        method: &method,
        headers,
        raw_query,
        via,
    };
    let (action, result) = match process(api, &incoming, &query, bytes).await {
        Processed::Here(action, result) => (action, result),
        Processed::Elsewhere(node, response) => {
            info!(
                request_id,
                action = query.get("Action").unwrap_or("-"),
                app_id = query.get("AppId").unwrap_or("-"),
                node,
                "zego request answered by the node of its task"
            );
            return response;
        }
    };
    let (code, message, data) = match result {
        Ok(data) => {
            let family = action.map(Action::family).unwrap_or(codes::Family::Room);
            (0, family.ok_message().to_string(), data)
        }
        Err(e) => (e.code, e.message, Data::Absent),
    };
    let action_name = action.map(Action::name).unwrap_or("-");
    let app_id = query.get("AppId").unwrap_or("-");
    if code == 0 {
        info!(
            request_id,
            action = action_name,
            app_id,
            code,
            "zego request"
        );
    } else {
        warn!(
            request_id,
            action = action_name,
            app_id,
            code,
            message,
            "zego request refused"
        );
    }
    let body = envelope(code, &message, &request_id, data);
    (
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// A request as it came in.
struct Incoming<'a> {
    method: &'a Method,
    headers: &'a HeaderMap,
    raw_query: &'a str,
    via: Via,
}

enum Processed {
    Here(Option<Action>, Result<Data, ZegoError>),
    /// Answered by another node (its id), as it answered.
    Elsewhere(String, Response),
}

async fn process(
    api: &Arc<ZegoApi>,
    incoming: &Incoming<'_>,
    query: &Params,
    body: Option<axum::body::Bytes>,
) -> Processed {
    let here = |action, result| Processed::Here(Some(action), result);
    let action = match parse_action(query) {
        Ok(a) => a,
        Err(e) => return Processed::Here(None, Err(e)),
    };
    let family = action.family();
    let bytes = match body {
        Some(b) => b,
        None => {
            return here(
                action,
                Err(ZegoError::new(
                    family.bad_param(),
                    format!("request body is unreadable or larger than {BODY_LIMIT} bytes"),
                )),
            );
        }
    };
    let now = api.control.now_ms();
    // A call another node sent on was checked there (nonce claimed, rate counted).
    let forwarded = incoming.via == Via::Node;
    let app = match api
        .gateway
        .authenticate(&api.control, query, now, !forwarded)
    {
        Ok(app) => app.clone(),
        Err(e) => return here(action, Err(e)),
    };
    let mut params = query.clone();
    if *incoming.method == Method::POST && !bytes.iter().all(u8::is_ascii_whitespace) {
        match serde_json::from_slice::<Value>(&bytes) {
            Ok(Value::Object(map)) => params.merge_json(map),
            Ok(Value::String(_)) => {
                return here(
                    action,
                    Err(ZegoError::new(
                        family.bad_body(),
                        "the body must be a JSON object, not a JSON-encoded string",
                    )),
                );
            }
            Ok(_) | Err(_) => {
                return here(
                    action,
                    Err(ZegoError::new(
                        family.bad_body(),
                        "the body must be a JSON object",
                    )),
                );
            }
        }
    }
    if !forwarded && let Err(e) = api.gateway.throttle(&app, action, now) {
        return here(action, Err(e));
    }
    let forward = || Forward {
        method: incoming.method.clone(),
        raw_query: incoming.raw_query.to_string(),
        headers: incoming.headers.clone(),
        body: bytes.clone(),
    };
    // A call about a task another node runs is answered there.
    if !forwarded
        && let Some(mixing) = &api.mixing
        && mixing.cluster().is_some()
        && let Some(task_id) = mix::task_of(action, &params)
    {
        let (m, app_id) = (mixing.clone(), app.config.app_id);
        let owner = tokio::task::spawn_blocking(move || m.owner_elsewhere(app_id, &task_id))
            .await
            .ok()
            .flatten();
        if let Some(peer) = owner {
            return elsewhere(mixing, peer, forward, now).await;
        }
    }
    let via = incoming.via;
    let result = if writes(action) {
        // Writes wait on the store's fsync: keep them off the async workers.
        let api = api.clone();
        tokio::task::spawn_blocking(move || dispatch(&api, &app, &params, action, now, via))
            .await
            .unwrap_or_else(|e| {
                Err(ZegoError::new(
                    codes::GW_INTERNAL,
                    format!("internal error: {e}"),
                ))
            })
    } else {
        dispatch(api, &app, &params, action, now, via)
    };
    // Room calls every node answers for its own members.
    let result = match api.cluster() {
        Some(cluster) if !forwarded && spread::spreads(action) => {
            let answers = cluster.broadcast(forward(), now).await;
            let others: Vec<Option<Value>> = answers.into_iter().map(|(_, v)| v).collect();
            spread::merge(action, result, &others)
        }
        _ => result,
    };
    // Placement chose another node for a new task.
    if let Ok(Data::Elsewhere(peer)) = &result
        && let Some(mixing) = &api.mixing
    {
        return elsewhere(mixing, peer.clone(), forward, now).await;
    }
    here(action, result)
}

/// Another node's answer to the call.
async fn elsewhere(
    mixing: &MixControl,
    peer: Peer,
    forward: impl FnOnce() -> Forward,
    now_ms: u64,
) -> Processed {
    let Some(cluster) = mixing.cluster() else {
        return Processed::Here(
            None,
            Err(ZegoError::new(
                codes::GW_INTERNAL,
                "no cluster to forward to",
            )),
        );
    };
    let req = forward();
    let answer = cluster.forward(&peer, req, now_ms).await;
    Processed::Elsewhere(peer.node, answer)
}

/// Actions that write to the store.
fn writes(action: Action) -> bool {
    matches!(
        action,
        Action::AddStream
            | Action::DeleteStream
            | Action::ForbidRTCStream
            | Action::ResumeRTCStream
            | Action::ForbidRTCStreams
            | Action::ResumeRTCStreams
            | Action::StartMix
            | Action::StopMix
            | Action::StartAutoMix
            | Action::StopAutoMix
            | Action::StartCloudTranscode
            | Action::StopCloudTranscode
    )
}

fn dispatch(
    api: &ZegoApi,
    app: &Arc<AppRuntime>,
    params: &Params,
    action: Action,
    now_ms: u64,
    via: Via,
) -> Result<Data, ZegoError> {
    let call = Call {
        api,
        app,
        params,
        now_ms,
        via,
    };
    match action {
        Action::AddStream => room::add_stream(&call),
        Action::DeleteStream => room::delete_stream(&call),
        Action::DescribeSimpleStreamList => room::describe_simple_stream_list(&call),
        Action::DescribeUserNum => room::describe_user_num(&call),
        Action::DescribeUsers => members::describe_users(&call),
        Action::DescribeUserList => members::describe_user_list(&call),
        Action::KickoutUser => members::kickout_user(&call),
        Action::CloseRoom => members::close_room(&call),
        Action::ForbidRTCStream => media::forbid_one(&call),
        Action::ResumeRTCStream => media::resume_one(&call),
        Action::ForbidRTCStreams => media::forbid_many(&call),
        Action::ResumeRTCStreams => media::resume_many(&call),
        Action::DescribeRTCStreamState => media::describe_state(&call),
        Action::StartMix => mix::start_mix(&call),
        Action::StopMix => mix::stop_mix(&call),
        Action::GetMixTaskInfo => mix::get_mix_task_info(&call),
        Action::StartAutoMix => mix::start_auto_mix(&call),
        Action::StopAutoMix => mix::stop_auto_mix(&call),
        Action::StartCloudTranscode => mix::start_cloud_transcode(&call),
        Action::StopCloudTranscode => mix::stop_cloud_transcode(&call),
    }
}
