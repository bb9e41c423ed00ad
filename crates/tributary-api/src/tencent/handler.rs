//! One Tencent request, from the raw HTTP parts to the envelope: which signature (TC3
//! headers, or the legacy `Signature` parameter), which app (by SecretId), which action,
//! and the action itself over the same mixing control as the ZEGO dialect.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::body::Bytes;
use axum::http::{HeaderMap, Method};
use axum::response::Response;
use serde_json::{Map, Value};
use tracing::{info, warn};

use tributary_core::mix::MixLimits;
use tributary_core::mix_task::{MixTask, TaskError, TaskKind};
use tributary_core::replay::ReplayGuard;
use tributary_core::store::{StoreError, WriteBatch, WriteOp};
use tributary_core::watermark::{MAX_WATERMARKS, Watermark};
use tributary_core::{AppId, CoreError};

use super::envelope::{TcError, new_request_id, reply};
use super::mix::{Create, translate};
use super::{legacy, params, signature};
use crate::cluster::{Cluster, Forward, Peer, Via};
use crate::control::ControlPlane;
use crate::mixing::{EngineRefusal, MixControl, MixControlError, StopReason};
use crate::zego::action::Action;
use crate::zego::gateway::Gateway;

/// Signatures and nonces one app may have in the replay guard at once.
const MAX_SIGNATURES_PER_APP: usize = 2_000_000;
/// The API version the SDKs send for Live.
pub const VERSION: &str = "2018-08-01";
/// The vendor's limit on one mix's inputs.
const MAX_INPUTS: usize = 16;
/// A stream may take part in fewer than this many sessions at once (vendor, inner -41).
const MAX_SESSIONS_PER_STREAM: usize = 20;
/// Parameters of the legacy transport, not of the action.
const TRANSPORT: &[&str] = &[
    "Action",
    "Version",
    "Region",
    "SecretId",
    "SignatureMethod",
    "Signature",
    "Timestamp",
    "Nonce",
    "Language",
    "RequestClient",
    "Token",
];

pub struct TencentApi {
    control: Arc<ControlPlane>,
    /// Each app's watermark images (AddLiveWatermark), as stored.
    watermarks: Mutex<HashMap<AppId, Vec<Watermark>>>,
    mixing: Option<Arc<MixControl>>,
    /// SecretId → (app, SecretKey).
    keys: HashMap<String, (AppId, String)>,
    /// The credential scope's service to require (None: take it as given, as the Node SDK
    /// signs the endpoint's first label).
    service: Option<String>,
    /// Signatures (TC3) and nonces (legacy) seen within the window, per app.
    replay: HashMap<AppId, Mutex<ReplayGuard>>,
    /// The ZEGO gateway's per-app rate limiters: mixing calls of both dialects count
    /// against the same budgets.
    limits: Option<Arc<Gateway>>,
}

/// The answer to a request seen before (on this node or another sharing the store).
fn replayed() -> TcError {
    TcError::new(
        "AuthFailure.SignatureFailure",
        "this request was already received (replayed): sign every request anew \
         (TC3: a new X-TC-Timestamp; legacy: a new Nonce)",
    )
}

impl TencentApi {
    pub fn new(
        control: Arc<ControlPlane>,
        mixing: Option<Arc<MixControl>>,
        service: Option<String>,
        limits: Option<Arc<Gateway>>,
    ) -> Result<Arc<Self>, StoreError> {
        let mut keys = HashMap::new();
        let mut watermarks = HashMap::new();
        let mut replay = HashMap::new();
        for app in control.apps() {
            let id = app.config.app_id;
            replay.insert(
                id,
                Mutex::new(ReplayGuard::new(
                    signature::MAX_SKEW_S as u64,
                    MAX_SIGNATURES_PER_APP,
                    rand::random(),
                    control.now_ms() / 1000,
                )),
            );
            watermarks.insert(id, control.store().watermarks(id)?);
            for c in &app.config.tencent_credentials {
                keys.insert(c.secret_id.clone(), (id, c.secret_key.clone()));
            }
        }
        Ok(Arc::new(TencentApi {
            control,
            watermarks: Mutex::new(watermarks),
            mixing,
            keys,
            service,
            replay,
            limits,
        }))
    }

    fn watermarks(&self) -> MutexGuard<'_, HashMap<AppId, Vec<Watermark>>> {
        self.watermarks.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The watermarks, with the app's list re-read first when other nodes share the store
    /// (one may have added or deleted one). A store that does not answer leaves the list
    /// as this node knows it.
    fn fresh_watermarks(&self, app_id: AppId) -> MutexGuard<'_, HashMap<AppId, Vec<Watermark>>> {
        let store = self.control.store();
        let stored = store
            .shared()
            .then(|| crate::blocking::run(|| store.watermarks(app_id)));
        let mut all = self.watermarks();
        match stored {
            Some(Ok(list)) => {
                all.insert(app_id, list);
            }
            Some(Err(e)) => warn!(app_id, error = %e, "watermarks not re-read from the store"),
            None => {}
        }
        all
    }

    pub fn now_ms(&self) -> u64 {
        self.control.now_ms()
    }

    /// This node's cluster, when it shares its store with others.
    pub fn cluster(&self) -> Option<&Arc<Cluster>> {
        self.mixing.as_ref().and_then(|m| m.cluster())
    }

    /// Whether any app has a Tencent key (otherwise the dialect is not served).
    pub fn has_keys(&self) -> bool {
        !self.keys.is_empty()
    }
}

fn form_pairs(raw: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(raw)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// Whether a request speaks this dialect: a TC3 `X-TC-Action` header, or the legacy
/// `SecretId` + `Signature` parameters (ZEGO requests carry `AppId` and
/// `SignatureVersion` instead).
pub fn is_tencent(headers: &HeaderMap, raw_query: &str, body: Option<&[u8]>) -> bool {
    if headers.contains_key("x-tc-action") {
        return true;
    }
    let mut pairs = form_pairs(raw_query.as_bytes());
    if let Some(b) = body
        && !b.trim_ascii_start().starts_with(b"{")
    {
        pairs.extend(form_pairs(b));
    }
    let has = |k: &str| pairs.iter().any(|(n, _)| n == k);
    has("SecretId") && has("Signature") && !has("SignatureVersion")
}

/// Answers one request of this dialect: always HTTP 200 and the envelope.
pub async fn respond(
    api: &Arc<TencentApi>,
    method: Method,
    headers: &HeaderMap,
    raw_query: &str,
    body: Option<Bytes>,
    via: Via,
) -> Response {
    let request_id = new_request_id();
    let result = match process(api, &method, headers, raw_query, body, via).await {
        Processed::Here(outcome) => outcome,
        Processed::Elsewhere(node, response) => {
            info!(
                request_id,
                node, "tencent request answered by the node of its task"
            );
            return response;
        }
    };
    match &result {
        Ok((action, app, _)) => info!(request_id, action, app_id = app, "tencent request"),
        Err((action, e)) => warn!(
            request_id,
            action = action.as_deref().unwrap_or("-"),
            code = e.code,
            message = %e.message,
            "tencent request refused"
        ),
    }
    reply(result.map(|(_, _, m)| m).map_err(|(_, e)| e), &request_id)
}

type Outcome = Result<(String, AppId, Map<String, Value>), (Option<String>, TcError)>;

enum Processed {
    Here(Outcome),
    /// Answered by another node (its id), as it answered.
    Elsewhere(String, Response),
}

impl From<Outcome> for Processed {
    fn from(o: Outcome) -> Self {
        Processed::Here(o)
    }
}

async fn process(
    api: &Arc<TencentApi>,
    method: &Method,
    headers: &HeaderMap,
    raw_query: &str,
    body: Option<Bytes>,
    via: Via,
) -> Processed {
    // The call as it came, kept only where it may be sent on to another node.
    let forward = api.cluster().and(body.clone()).map(|body| Forward {
        method: method.clone(),
        raw_query: raw_query.to_string(),
        headers: headers.clone(),
        body,
    });
    let (action, app_id, params) = match check(api, method, headers, raw_query, body, via).await {
        Ok(checked) => checked,
        Err(e) => return Processed::Here(Err(e)),
    };
    let fail = |e: TcError| Processed::Here(Err((Some(action.clone()), e)));
    let now_ms = api.control.now_ms();
    let cluster = api.cluster().cloned();
    // A call about a session another node runs is answered there.
    if via == Via::Client
        && let (Some(mixing), Some(cluster), Some(forward)) = (&api.mixing, &cluster, &forward)
        && matches!(
            action.as_str(),
            "CreateCommonMixStream" | "CancelCommonMixStream"
        )
        && let Some(session) = params
            .get("MixStreamSessionId")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    {
        let (m, session) = (mixing.clone(), session.to_string());
        let owner = tokio::task::spawn_blocking(move || m.owner_elsewhere(app_id, &session))
            .await
            .ok()
            .flatten();
        if let Some(peer) = owner {
            let answer = cluster.forward(&peer, forward.clone(), now_ms).await;
            return Processed::Elsewhere(peer.node, answer);
        }
    }
    let act = action.clone();
    let me = api.clone();
    let done = tokio::task::spawn_blocking(move || {
        let mut placed = None;
        let r = run(&me, app_id, &act, &params, via, &mut placed);
        (r, placed)
    })
    .await;
    match done {
        Ok((_, Some(peer))) => match (&cluster, forward) {
            (Some(cluster), Some(forward)) => {
                let answer = cluster.forward(&peer, forward, now_ms).await;
                Processed::Elsewhere(peer.node, answer)
            }
            _ => fail(TcError::new("InternalError", "no cluster to forward to")),
        },
        Ok((Ok(fields), None)) => Processed::Here(Ok((action, app_id, fields))),
        Ok((Err(e), None)) => fail(e),
        Err(e) => fail(TcError::new("InternalError", e.to_string())),
    }
}

/// Authenticates a request and reads its parameters: its action, app and parameters.
async fn check(
    api: &Arc<TencentApi>,
    method: &Method,
    headers: &HeaderMap,
    raw_query: &str,
    body: Option<Bytes>,
    via: Via,
) -> Result<(String, AppId, Value), (Option<String>, TcError)> {
    if *method != Method::GET && *method != Method::POST {
        return Err((
            None,
            TcError::new("UnsupportedProtocol", "only GET and POST are accepted"),
        ));
    }
    let Some(body) = body else {
        return Err((
            None,
            TcError::new("InvalidParameter", "the body is unreadable or too large"),
        ));
    };
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let now_s = (api.control.now_ms() / 1000) as i64;
    let lookup = |id: &str| api.keys.get(id).map(|(_, k)| k.clone());
    let (action, version, secret_id, params, replay_key) =
        if let Some(action) = header("x-tc-action") {
            let req = signature::Request {
                method: method.as_str(),
                raw_query: if *method == Method::GET {
                    raw_query
                } else {
                    ""
                },
                header: &header,
                body: &body,
            };
            let secret_id = signature::verify(&req, now_s, api.service.as_deref(), &lookup)
                .map_err(|e| (Some(action.clone()), auth_error(e)))?;
            let params = if *method == Method::GET {
                let pairs = form_pairs(raw_query.as_bytes());
                params::unflatten(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())), &[])
                    .map_err(|e| {
                        (
                            Some(action.clone()),
                            TcError::new("InvalidParameter", e.to_string()),
                        )
                    })?
            } else if body.trim_ascii().is_empty() {
                Value::Object(Map::new())
            } else {
                serde_json::from_slice::<Value>(&body)
                    .ok()
                    .filter(Value::is_object)
                    .ok_or_else(|| {
                        (
                            Some(action.clone()),
                            TcError::new("InvalidParameter", "the body must be a JSON object"),
                        )
                    })?
            };
            let key = format!("tc3:{}", header("authorization").unwrap_or_default());
            (action, header("x-tc-version"), secret_id, params, key)
        } else {
            let mut pairs = form_pairs(raw_query.as_bytes());
            pairs.extend(form_pairs(&body));
            let get = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
            let action = get("Action")
                .ok_or_else(|| (None, TcError::new("MissingParameter", "Action is required")))?;
            let host = header("host").unwrap_or_default();
            let secret_id = legacy::verify(method.as_str(), &host, &pairs, now_s, &lookup)
                .map_err(|e| (Some(action.clone()), auth_error(e)))?;
            let params = params::unflatten(
                pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())),
                TRANSPORT,
            )
            .map_err(|e| {
                (
                    Some(action.clone()),
                    TcError::new("InvalidParameter", e.to_string()),
                )
            })?;
            let key = format!("nonce:{}", get("Nonce").unwrap_or_default());
            (action, get("Version"), secret_id, params, key)
        };
    let fail = |e: TcError| (Some(action.clone()), e);
    match version.as_deref() {
        Some(VERSION) => {}
        Some(v) => {
            return Err(fail(TcError::new(
                "NoSuchVersion",
                format!("version {v} is not served; use {VERSION}"),
            )));
        }
        None => {
            return Err(fail(TcError::new(
                "MissingParameter",
                "the Version is required",
            )));
        }
    }
    let Some(&(app_id, _)) = api.keys.get(&secret_id) else {
        return Err(fail(TcError::new(
            "AuthFailure.SecretIdNotFound",
            "unknown SecretId",
        )));
    };
    // A call another node sent on was checked there (replay claimed, rate counted).
    if via == Via::Client {
        api.guard(app_id, &action, &replay_key, now_s)
            .map_err(fail)?;
    }
    Ok((action, app_id, params))
}

impl TencentApi {
    /// Replay and rate limits of an authenticated request.
    ///
    /// TC3 signs no nonce, so the signature itself is remembered: a byte-identical request
    /// (same action, body and second) is a replay. Reads (`Describe*`) change nothing
    /// and SDKs repeat them legitimately, so they are not remembered. The legacy form
    /// carries a `Nonce`, remembered like ZEGO's `SignatureNonce`.
    fn guard(&self, app_id: AppId, action: &str, key: &str, now_s: i64) -> Result<(), TcError> {
        if !action.starts_with("Describe")
            && let Some(g) = self.replay.get(&app_id)
        {
            g.lock()
                .unwrap_or_else(|e| e.into_inner())
                .check_and_insert(key, now_s.max(0) as u64)
                .map_err(|e| match e {
                    CoreError::NonceReplayed => replayed(),
                    other => TcError::new("InternalError", other.to_string()),
                })?;
            // And for the other nodes sharing the store (a replay sent to another node).
            let now_ms = now_s.max(0) as u64 * 1000;
            let keep_ms = 2 * crate::tencent::signature::MAX_SKEW_S as u64 * 1000;
            match self
                .control
                .claim_nonce(app_id, "tencent", key, now_ms, keep_ms)
            {
                Ok(true) => {}
                Ok(false) => return Err(replayed()),
                Err(e) => return Err(TcError::new("InternalError", e.to_string())),
            }
        }
        let equivalent = match action {
            "CreateCommonMixStream" => Some(Action::StartMix),
            "CancelCommonMixStream" => Some(Action::StopMix),
            _ => None,
        };
        if let (Some(limits), Some(zego_action), Some(app)) =
            (&self.limits, equivalent, self.control.app(app_id))
        {
            limits
                .throttle(app, zego_action, self.control.now_ms())
                .map_err(|e| TcError::new("RequestLimitExceeded", e.message))?;
        }
        Ok(())
    }
}

fn auth_error(e: signature::Tc3Error) -> TcError {
    use signature::Tc3Error::*;
    let code = match &e {
        Expired { .. } => "AuthFailure.SignatureExpire",
        SecretIdNotFound(_) => "AuthFailure.SecretIdNotFound",
        Malformed(_) | WrongService { .. } | Mismatch => "AuthFailure.SignatureFailure",
    };
    TcError::new(code, e.to_string())
}

/// Who owns Tencent sessions in the shared task table: one owner for every key of the
/// app (the vendor has no per-user ownership).
const OWNER: &str = "tencent";

/// Runs an action here. A new session placement sends to another node is not started:
/// `placed` names that node instead.
fn run(
    api: &TencentApi,
    app_id: AppId,
    action: &str,
    p: &Value,
    via: Via,
    placed: &mut Option<Peer>,
) -> Result<Map<String, Value>, TcError> {
    match action {
        "AddLiveWatermark" => return add_watermark(api, app_id, p),
        "DeleteLiveWatermark" => return delete_watermark(api, app_id, p),
        "DescribeLiveWatermarks" => return describe_watermarks(api, app_id),
        _ => {}
    }
    let Some(mixing) = api.mixing.as_deref() else {
        return Err(TcError::new(
            "UnsupportedOperation",
            "this node runs no mixing engine",
        ));
    };
    match action {
        "CancelCommonMixStream" => {
            let session = p
                .get("MixStreamSessionId")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .ok_or_else(|| {
                    TcError::new("MissingParameter", "MixStreamSessionId is required")
                })?;
            cancel(mixing, app_id, session, true).map(|_| Map::new())
        }
        "CreateCommonMixStream" => {
            let max_outputs = api
                .control
                .app(app_id)
                .map_or(3, |a| a.config.limits.max_mix_outputs as usize);
            let limits = MixLimits {
                max_inputs: MAX_INPUTS,
                max_outputs,
            };
            let marks = api
                .fresh_watermarks(app_id)
                .get(&app_id)
                .cloned()
                .unwrap_or_default();
            let created = translate(p, limits, &|s| mixing.stream_size(app_id, s), &|id| {
                marks.iter().find(|w| w.id == id).cloned()
            })?;
            match created {
                Create::Cancel { session_id } => {
                    cancel(mixing, app_id, &session_id, false).map(|_| Map::new())
                }
                Create::Mix { session_id, spec } => {
                    let spec = *spec;
                    if let Ok(Some(old)) = mixing.get(app_id, &session_id)
                        && old.spec.outputs.first().map(|o| &o.target)
                            != spec.outputs.first().map(|o| &o.target)
                    {
                        return Err(TcError::new(
                            "InvalidParameter.SessionOutputStreamChanged",
                            "the session already mixes into another output stream",
                        ));
                    }
                    for stream in spec.input_streams() {
                        if mixing.tasks_reading(app_id, stream, &session_id) + 1
                            >= MAX_SESSIONS_PER_STREAM
                        {
                            return Err(TcError::new(
                                "InvalidParameter.OtherError",
                                format!(
                                    "InnerErrCode:[ -41 ],InnerErrMsg: [ stream {stream} is already in {} mix sessions ]",
                                    MAX_SESSIONS_PER_STREAM - 1
                                ),
                            ));
                        }
                    }
                    let now = api.control.now_ms();
                    let task = MixTask {
                        task_id: session_id,
                        user_id: OWNER.into(),
                        room_id: String::new(),
                        sequence: None,
                        kind: TaskKind::Manual,
                        spec,
                        ex_para: Vec::new(),
                        started_ms: now,
                        updated_ms: now,
                    };
                    if via == Via::Client
                        && let Some(peer) = mixing.place_elsewhere(app_id, &task)
                    {
                        *placed = Some(peer);
                        return Ok(Map::new());
                    }
                    mixing
                        .start(app_id, task)
                        .map(|_| Map::new())
                        .map_err(mix_error)
                }
            }
        }
        other => Err(TcError::new(
            "InvalidAction",
            format!("the action {other} does not exist or is not served by this server yet"),
        )),
    }
}

/// Characters the vendor forbids in a PictureUrl.
const URL_FORBIDDEN: &str = ";(){}$>`#\"'|";

fn percent(p: &Value, field: &str) -> Result<i64, TcError> {
    match p.get(field).and_then(params::number) {
        None => Ok(0),
        Some(v) if (0.0..=100.0).contains(&v) && v.fract() == 0.0 => Ok(v as i64),
        Some(v) => Err(TcError::new(
            "InvalidParameter",
            format!("{field} is a percentage within [0, 100], not {v}"),
        )),
    }
}

fn add_watermark(
    api: &TencentApi,
    app_id: AppId,
    p: &Value,
) -> Result<Map<String, Value>, TcError> {
    let url = p
        .get("PictureUrl")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| TcError::new("MissingParameter", "PictureUrl is required"))?;
    if !(url.starts_with("http://") || url.starts_with("https://"))
        || url.chars().any(|c| URL_FORBIDDEN.contains(c))
    {
        return Err(TcError::new(
            "InvalidParameter",
            "PictureUrl must be an http(s) URL without ;(){}$>`#\"'|",
        ));
    }
    let name = p
        .get("WatermarkName")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| TcError::new("MissingParameter", "WatermarkName is required"))?;
    if name.len() > 30 {
        return Err(TcError::new(
            "InvalidParameter",
            "WatermarkName is at most 30 bytes",
        ));
    }
    let mut all = api.fresh_watermarks(app_id);
    let list = all.entry(app_id).or_default();
    if list.len() >= MAX_WATERMARKS {
        return Err(TcError::new(
            "LimitExceeded",
            format!("at most {MAX_WATERMARKS} watermarks; delete one first"),
        ));
    }
    let w = Watermark {
        id: list.iter().map(|w| w.id).max().unwrap_or(100_000) + 1,
        name: name.to_string(),
        picture_url: url.to_string(),
        x_percent: percent(p, "XPosition")?,
        y_percent: percent(p, "YPosition")?,
        width_percent: percent(p, "Width")?,
        height_percent: percent(p, "Height")?,
        created_ms: api.control.now_ms(),
    };
    api.control
        .write(&WriteBatch {
            app_id,
            ops: vec![WriteOp::PutWatermark(w.clone())],
        })
        .map_err(|e| TcError::new("InternalError", e.to_string()))?;
    let mut out = Map::new();
    out.insert("WatermarkId".into(), Value::from(w.id));
    list.push(w);
    Ok(out)
}

fn delete_watermark(
    api: &TencentApi,
    app_id: AppId,
    p: &Value,
) -> Result<Map<String, Value>, TcError> {
    let id = p
        .get("WatermarkId")
        .and_then(params::number)
        .ok_or_else(|| TcError::new("MissingParameter", "WatermarkId is required"))?
        as u64;
    let mut all = api.fresh_watermarks(app_id);
    let list = all.entry(app_id).or_default();
    if !list.iter().any(|w| w.id == id) {
        return Err(TcError::new(
            "ResourceNotFound",
            format!("watermark {id} does not exist"),
        ));
    }
    api.control
        .write(&WriteBatch {
            app_id,
            ops: vec![WriteOp::DeleteWatermark { id }],
        })
        .map_err(|e| TcError::new("InternalError", e.to_string()))?;
    list.retain(|w| w.id != id);
    Ok(Map::new())
}

fn describe_watermarks(api: &TencentApi, app_id: AppId) -> Result<Map<String, Value>, TcError> {
    let all = api.fresh_watermarks(app_id);
    let list: Vec<Value> = all
        .get(&app_id)
        .map(|l| {
            l.iter()
                .map(|w| {
                    serde_json::json!({
                        "WatermarkId": w.id,
                        "PictureUrl": w.picture_url,
                        "XPosition": w.x_percent,
                        "YPosition": w.y_percent,
                        "WatermarkName": w.name,
                        "Status": 0,
                        "CreateTime": (w.created_ms / 1000).to_string(),
                        "Width": w.width_percent,
                        "Height": w.height_percent,
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    let mut out = Map::new();
    out.insert("TotalNum".into(), Value::from(list.len()));
    out.insert("WatermarkList".into(), Value::Array(list));
    Ok(out)
}

fn cancel(
    mixing: &MixControl,
    app_id: AppId,
    session: &str,
    must_exist: bool,
) -> Result<(), TcError> {
    match mixing.stop(app_id, session, None, None, StopReason::Requested) {
        Ok(_) => Ok(()),
        Err(MixControlError::Rule(TaskError::NotFound(_))) if !must_exist => Ok(()),
        Err(MixControlError::Rule(TaskError::NotFound(_))) => Err(TcError::new(
            "InvalidParameter.CancelSessionNotExist",
            "The canceled session does not exist.",
        )),
        Err(e) => Err(mix_error(e)),
    }
}

fn mix_error(e: MixControlError) -> TcError {
    match e {
        MixControlError::Rule(TaskError::OutputTaken { .. }) => {
            TcError::new("InvalidParameter.InvalidOutputStreamID", e.to_string())
        }
        MixControlError::Rule(r) => TcError::new("InvalidParameter", r.to_string()),
        MixControlError::Engine(EngineRefusal::InputMissing(m)) => {
            TcError::new("FailedOperation.StreamNotExist", m)
        }
        MixControlError::Engine(EngineRefusal::OverBudget(m)) => {
            TcError::new("ResourceInsufficient", m)
        }
        MixControlError::Engine(EngineRefusal::ImageReference(m) | EngineRefusal::ImageLoad(m)) => {
            TcError::new("FailedOperation.GetPictureUrlError", m)
        }
        MixControlError::Engine(EngineRefusal::InputUrl(m) | EngineRefusal::OutputUrl(m)) => {
            TcError::new("InvalidParameter", m)
        }
        MixControlError::Engine(EngineRefusal::Internal(m)) => TcError::new("InternalError", m),
        MixControlError::Engine(EngineRefusal::Label(m)) => TcError::new("InvalidParameter", m),
        MixControlError::Control(c) => TcError::new("InternalError", c.to_string()),
        // Tencent sessions never list outputs in rooms; kept for completeness.
        e @ MixControlError::TargetRoomMissing { .. } => {
            TcError::new("InvalidParameter", e.to_string())
        }
        MixControlError::Store(s) => {
            tracing::error!(error = %s, "store write failed");
            TcError::new("InternalError", "the session could not be saved; retry")
        }
    }
}
