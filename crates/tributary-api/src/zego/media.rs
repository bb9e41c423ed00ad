//! Media-service actions: ForbidRTCStream(s), ResumeRTCStream(s), DescribeRTCStreamState.
//!
//! Every call carries a `Sequence` that must strictly increase per stream id within 10 s.
//! The vendor documents no code for a stale one; this server refuses it with code 2 and a
//! Message giving the last accepted value, so a delayed forbid can never undo a resume.

use serde_json::json;

use tributary_core::CoreError;
use tributary_core::ids::{self, IdKind};

use super::codes::*;
use super::envelope::Data;
use super::{Call, required};
use crate::cluster::Via;
use crate::control::ControlError;

/// The most ids one batch call may name.
pub const MAX_BATCH: usize = 20;

fn sequence(call: &Call) -> Result<u64, ZegoError> {
    let raw = required(call.params, "Sequence", MEDIA_BAD_PARAM)?;
    raw.parse().map_err(|_| {
        ZegoError::new(
            MEDIA_BAD_PARAM,
            format!(
                "Sequence must be a decimal integer (Unix milliseconds recommended), not {raw:?}"
            ),
        )
    })
}

/// The call's Sequence for `ids`, claimed for every node sharing the store when the call
/// comes from a client (a call another node sent on was claimed there).
fn claimed_sequence(call: &Call, ids: &[String]) -> Result<u64, ZegoError> {
    let seq = sequence(call)?;
    if call.via == Via::Client {
        call.control()
            .claim_sequence(call.app.config.app_id, ids, seq)
            .map_err(|e| media_error(e, MEDIA_BAD_PARAM))?;
    }
    Ok(seq)
}

/// Checks one stream id, including a test app's `zegotest-<AppId>-` prefix.
fn check_stream_id(call: &Call, id: &str) -> Result<(), String> {
    ids::validate(IdKind::Stream, id).map_err(|e| e.to_string())?;
    if call.app.config.is_test {
        let prefix = format!("zegotest-{}-", call.app.config.app_id);
        if !id.starts_with(&prefix) {
            return Err(format!(
                "StreamId {id:?} lacks the test-environment prefix {prefix:?}"
            ));
        }
    }
    Ok(())
}

fn single_id(call: &Call) -> Result<String, ZegoError> {
    let id = required(call.params, "StreamId", MEDIA_BAD_STREAM_ID)?;
    check_stream_id(call, id).map_err(|m| ZegoError::new(MEDIA_BAD_STREAM_ID, m))?;
    Ok(id.to_string())
}

fn batch_ids(call: &Call) -> Result<Vec<String>, ZegoError> {
    let ids = call.params.all("StreamId");
    if ids.is_empty() || ids.len() > MAX_BATCH {
        return Err(ZegoError::new(
            MEDIA_BAD_STREAM_LIST,
            format!(
                "StreamId[] must hold 1 to {MAX_BATCH} stream ids, not {}",
                ids.len()
            ),
        ));
    }
    for id in ids {
        check_stream_id(call, id).map_err(|m| ZegoError::new(MEDIA_BAD_STREAM_LIST, m))?;
    }
    let mut out = ids.to_vec();
    out.sort();
    out.dedup();
    Ok(out)
}

fn media_error(e: ControlError, failed_code: u64) -> ZegoError {
    match e {
        ControlError::Rule(rule @ CoreError::StaleSequence { .. }) => {
            ZegoError::new(MEDIA_BAD_PARAM, rule.to_string())
        }
        ControlError::Rule(rule) => ZegoError::new(failed_code, rule.to_string()),
        ControlError::Store(s) => {
            tracing::error!(error = %s, "store write failed");
            ZegoError::new(failed_code, "the change could not be saved; retry")
        }
        ControlError::UnknownApp(id) => {
            ZegoError::new(GW_UNKNOWN_APP, format!("unknown AppId {id}"))
        }
    }
}

pub(super) fn forbid_one(call: &Call) -> Result<Data, ZegoError> {
    let id = single_id(call)?;
    let seq = claimed_sequence(call, std::slice::from_ref(&id))?;
    call.control()
        .forbid(call.app.config.app_id, &[id], seq)
        .map_err(|e| media_error(e, MEDIA_FORBID_FAILED))?;
    Ok(Data::Null)
}

pub(super) fn resume_one(call: &Call) -> Result<Data, ZegoError> {
    let id = single_id(call)?;
    let seq = claimed_sequence(call, std::slice::from_ref(&id))?;
    call.control()
        .resume(call.app.config.app_id, &[id], seq)
        .map_err(|e| media_error(e, MEDIA_RESUME_FAILED))?;
    Ok(Data::Null)
}

pub(super) fn forbid_many(call: &Call) -> Result<Data, ZegoError> {
    let ids = batch_ids(call)?;
    let seq = claimed_sequence(call, &ids)?;
    call.control()
        .forbid(call.app.config.app_id, &ids, seq)
        .map_err(|e| media_error(e, MEDIA_BATCH_FORBID_FAILED))?;
    Ok(Data::Null)
}

pub(super) fn resume_many(call: &Call) -> Result<Data, ZegoError> {
    let ids = batch_ids(call)?;
    let seq = claimed_sequence(call, &ids)?;
    call.control()
        .resume(call.app.config.app_id, &ids, seq)
        .map_err(|e| media_error(e, MEDIA_BATCH_RESUME_FAILED))?;
    Ok(Data::Null)
}

pub(super) fn describe_state(call: &Call) -> Result<Data, ZegoError> {
    let id = single_id(call)?;
    let seq = claimed_sequence(call, std::slice::from_ref(&id))?;
    let live = call
        .control()
        .rtc_state(call.app.config.app_id, &id, seq)
        .map_err(|e| media_error(e, MEDIA_BAD_PARAM))?;
    match live {
        Some(s) => Ok(Data::Value(json!({
            "create_time": (s.create_time_ms / 1000).to_string(),
            "close_time": "0",
        }))),
        None => Err(ZegoError::new(
            MEDIA_STREAM_NOT_FOUND,
            format!("stream {id:?} is not being published"),
        )),
    }
}
