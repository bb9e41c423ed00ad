//! Mix tasks of one app and the rules for changing them: who may, in which order, and
//! which fields stay as they were first set.
//!
//! Like the room registry, changes are planned (checked, nothing moves) and then
//! committed, so the caller persists a plan before memory follows.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::mix::{Content, MixError, MixInput, MixLimits, MixSpec, RenderMode, Source};

/// Most extra inputs an auto-mix may add.
pub const MAX_AUTO_EXTRAS: usize = 9;

/// An extra stream of an auto-mix: one added from elsewhere, or one of the room's removed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AutoExtra {
    pub source: Source,
    pub volume: u32,
    /// `true`: keep this room stream out of the mix (ModifyType 1).
    pub remove: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TaskKind {
    /// The caller lists the inputs.
    Manual,
    /// Every audio stream of `room_id`, following joins and leaves, plus extras.
    Auto { extras: Vec<AutoExtra> },
    /// One input to several renditions (StartCloudTranscode).
    Transcode,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MixTask {
    pub task_id: String,
    pub user_id: String,
    pub room_id: String,
    pub sequence: Option<i64>,
    pub kind: TaskKind,
    /// For an auto-mix the inputs here are only the ones resolved at the last change;
    /// [`MixTask::effective_spec`] recomputes them from the room.
    pub spec: MixSpec,
    /// Extension key/values, kept as given.
    pub ex_para: Vec<(String, String)>,
    pub started_ms: u64,
    pub updated_ms: u64,
}

impl MixTask {
    pub fn is_auto(&self) -> bool {
        matches!(self.kind, TaskKind::Auto { .. })
    }

    pub fn is_transcode(&self) -> bool {
        matches!(self.kind, TaskKind::Transcode)
    }

    /// What kind of task this is, in words.
    pub fn kind_name(&self) -> &'static str {
        match self.kind {
            TaskKind::Manual => "audio+video mix",
            TaskKind::Auto { .. } => "auto-mix",
            TaskKind::Transcode => "transcode",
        }
    }

    /// The spec to run, given the room's current streams (used by auto-mixes only), at
    /// most `max_inputs` of them.
    pub fn effective_spec(&self, room_streams: &[String], max_inputs: usize) -> MixSpec {
        let TaskKind::Auto { extras } = &self.kind else {
            return self.spec.clone();
        };
        let mut spec = self.spec.clone();
        let outputs: Vec<&str> = spec.output_streams().collect();
        let removed = |id: &str| {
            extras
                .iter()
                .any(|e| e.remove && e.source == Source::Stream(id.to_string()))
        };
        let mut inputs: Vec<MixInput> = room_streams
            .iter()
            .filter(|s| !outputs.contains(&s.as_str()) && !removed(s))
            .map(|s| audio_input(Source::Stream(s.clone()), 100))
            .collect();
        for e in extras.iter().filter(|e| !e.remove) {
            if let Some(existing) = inputs.iter_mut().find(|i| i.source == e.source) {
                existing.volume = e.volume;
            } else {
                inputs.push(audio_input(e.source.clone(), e.volume));
            }
        }
        inputs.truncate(max_inputs);
        spec.inputs = inputs;
        spec
    }
}

fn audio_input(source: Source, volume: u32) -> MixInput {
    MixInput {
        source,
        rect: None,
        content: Content::AudioOnly,
        volume,
        render: RenderMode::Crop,
        crop: None,
        decor: Default::default(),
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TaskError {
    #[error(transparent)]
    Spec(#[from] MixError),
    #[error("task {task_id} was started by user {owner}; only that user may change or stop it")]
    NotOwner { task_id: String, owner: String },
    #[error(
        "Sequence {got} is not greater than {last}, the task's last accepted Sequence; the request was not applied"
    )]
    StaleSequence { got: i64, last: i64 },
    #[error("task {0} does not exist")]
    NotFound(String),
    #[error(
        "task {0} is a running {1}; stop it before starting it again as another kind (mix, auto-mix, transcode)"
    )]
    KindChanged(String, &'static str),
    #[error("output stream {stream} is already produced by task {task_id}")]
    OutputTaken { stream: String, task_id: String },
    #[error("the app already runs {max} mix tasks")]
    TooManyTasks { max: usize },
    #[error("room {room_id} already has auto-mix task {task_id}; only one per room")]
    RoomHasAutoMix { room_id: String, task_id: String },
}

/// The outcome of a planned start: the task as it will be stored.
#[derive(Debug, Clone, PartialEq)]
pub struct StartPlan {
    pub task: MixTask,
    pub is_update: bool,
}

#[derive(Debug, Default)]
pub struct MixTasks {
    tasks: HashMap<String, MixTask>,
    max_tasks: usize,
    limits: MixLimits,
}

impl MixTasks {
    pub fn new(max_tasks: usize, limits: MixLimits) -> Self {
        Self::restore(max_tasks, limits, Vec::new())
    }

    pub fn restore(max_tasks: usize, limits: MixLimits, tasks: Vec<MixTask>) -> Self {
        MixTasks {
            tasks: tasks.into_iter().map(|t| (t.task_id.clone(), t)).collect(),
            max_tasks,
            limits,
        }
    }

    pub fn limits(&self) -> MixLimits {
        self.limits
    }

    pub fn get(&self, task_id: &str) -> Option<&MixTask> {
        self.tasks.get(task_id)
    }

    pub fn iter(&self) -> impl Iterator<Item = &MixTask> {
        self.tasks.values()
    }

    pub fn len(&self) -> usize {
        self.tasks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }

    /// Checks a StartMix/StartAutoMix. On an update, the owner and the Sequence are
    /// checked and the fixed fields (frame rate, buffering and alignment, each output's
    /// audio codec, bitrate and channels matched by position, an output's room matched by its
    /// target) keep their first values.
    pub fn plan_start(&self, mut req: MixTask) -> Result<StartPlan, TaskError> {
        let existing = self.tasks.get(&req.task_id);
        if let Some(old) = existing {
            if old.user_id != req.user_id {
                return Err(TaskError::NotOwner {
                    task_id: old.task_id.clone(),
                    owner: old.user_id.clone(),
                });
            }
            check_sequence(old.sequence, req.sequence)?;
            if old.kind_name() != req.kind_name() {
                return Err(TaskError::KindChanged(old.task_id.clone(), old.kind_name()));
            }
            req.spec.fps = old.spec.fps;
            req.spec.gop_s = old.spec.gop_s;
            req.spec.timing = old.spec.timing;
            for (new, first) in req.spec.outputs.iter_mut().zip(&old.spec.outputs) {
                new.audio_bitrate_bps = first.audio_bitrate_bps;
                new.channels = first.channels;
                new.audio_codec = first.audio_codec;
                new.sample_rate = first.sample_rate;
                if let (Some(v), Some(was)) = (new.video.as_mut(), first.video) {
                    v.codec = was.codec;
                }
            }
            // An output keeps the room it was listed in for as long as it runs.
            for new in req.spec.outputs.iter_mut() {
                if let Some(first) = old.spec.outputs.iter().find(|o| o.target == new.target) {
                    new.room = first.room.clone();
                }
            }
            req.started_ms = old.started_ms;
            if req.sequence.is_none() {
                req.sequence = old.sequence;
            }
        } else if self.tasks.len() >= self.max_tasks {
            return Err(TaskError::TooManyTasks {
                max: self.max_tasks,
            });
        }
        req.spec.validate(self.limits)?;
        for other in self.tasks.values().filter(|t| t.task_id != req.task_id) {
            for out in req.spec.output_streams() {
                if other.spec.output_streams().any(|o| o == out) {
                    return Err(TaskError::OutputTaken {
                        stream: out.to_string(),
                        task_id: other.task_id.clone(),
                    });
                }
            }
            if req.is_auto() && other.is_auto() && other.room_id == req.room_id {
                return Err(TaskError::RoomHasAutoMix {
                    room_id: req.room_id.clone(),
                    task_id: other.task_id.clone(),
                });
            }
        }
        Ok(StartPlan {
            is_update: existing.is_some(),
            task: req,
        })
    }

    pub fn commit_start(&mut self, plan: StartPlan) {
        self.tasks.insert(plan.task.task_id.clone(), plan.task);
    }

    /// Checks a StopMix: the task exists, the caller (when named) owns it, and the
    /// Sequence (when given) is newer.
    pub fn plan_stop(
        &self,
        task_id: &str,
        user_id: Option<&str>,
        sequence: Option<i64>,
    ) -> Result<&MixTask, TaskError> {
        let task = self
            .tasks
            .get(task_id)
            .ok_or_else(|| TaskError::NotFound(task_id.to_string()))?;
        if let Some(user) = user_id
            && user != task.user_id
        {
            return Err(TaskError::NotOwner {
                task_id: task.task_id.clone(),
                owner: task.user_id.clone(),
            });
        }
        check_sequence(task.sequence, sequence)?;
        Ok(task)
    }

    pub fn commit_stop(&mut self, task_id: &str) -> Option<MixTask> {
        self.tasks.remove(task_id)
    }

    /// Auto-mix tasks following `room_id`.
    pub fn auto_in_room<'a>(&'a self, room_id: &'a str) -> impl Iterator<Item = &'a MixTask> {
        self.tasks
            .values()
            .filter(move |t| t.is_auto() && t.room_id == room_id)
    }
}

fn check_sequence(last: Option<i64>, got: Option<i64>) -> Result<(), TaskError> {
    match (last, got) {
        (Some(last), Some(got)) if got <= last => Err(TaskError::StaleSequence { got, last }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mix::Target;

    fn task(id: &str, user: &str, seq: Option<i64>) -> MixTask {
        let mut spec = crate::mix::tests::spec();
        spec.inputs = vec![audio_input(Source::Stream("a".into()), 100)];
        spec.outputs[0].target = Target::Stream(format!("{id}-out"));
        MixTask {
            task_id: id.into(),
            user_id: user.into(),
            room_id: "r".into(),
            sequence: seq,
            kind: TaskKind::Manual,
            spec,
            ex_para: vec![],
            started_ms: 1,
            updated_ms: 1,
        }
    }

    #[test]
    fn owner_and_sequence_rule_updates_and_stops() {
        let mut tasks = MixTasks::new(10, MixLimits::default());
        let plan = tasks.plan_start(task("t", "u", Some(5))).unwrap();
        assert!(!plan.is_update);
        tasks.commit_start(plan);

        assert!(matches!(
            tasks.plan_start(task("t", "other", Some(6))),
            Err(TaskError::NotOwner { .. })
        ));
        assert_eq!(
            tasks.plan_start(task("t", "u", Some(5))),
            Err(TaskError::StaleSequence { got: 5, last: 5 })
        );
        let mut update = task("t", "u", Some(6));
        update.spec.fps = 30;
        update.spec.outputs[0].channels = 2;
        update.started_ms = 99;
        let plan = tasks.plan_start(update).unwrap();
        assert!(plan.is_update);
        // Fixed fields keep their first values.
        assert_eq!(plan.task.spec.fps, 15);
        assert_eq!(plan.task.spec.outputs[0].channels, 1);
        assert_eq!(plan.task.started_ms, 1);
        tasks.commit_start(plan);

        assert!(matches!(
            tasks.plan_stop("t", Some("x"), None),
            Err(TaskError::NotOwner { .. })
        ));
        assert!(matches!(
            tasks.plan_stop("t", Some("u"), Some(6)),
            Err(TaskError::StaleSequence { .. })
        ));
        assert!(tasks.plan_stop("t", Some("u"), Some(7)).is_ok());
        assert!(tasks.plan_stop("t", None, None).is_ok());
        assert!(tasks.commit_stop("t").is_some());
        assert_eq!(
            tasks.plan_stop("t", None, None),
            Err(TaskError::NotFound("t".into()))
        );
    }

    #[test]
    fn outputs_are_unique_across_tasks_and_tasks_are_bounded() {
        let mut tasks = MixTasks::new(2, MixLimits::default());
        tasks.commit_start(tasks.plan_start(task("a", "u1", None)).unwrap());
        let mut b = task("b", "u2", None);
        b.spec.outputs[0].target = Target::Stream("a-out".into());
        assert!(matches!(
            tasks.plan_start(b),
            Err(TaskError::OutputTaken { .. })
        ));
        tasks.commit_start(tasks.plan_start(task("b", "u2", None)).unwrap());
        assert_eq!(
            tasks.plan_start(task("c", "u3", None)),
            Err(TaskError::TooManyTasks { max: 2 })
        );
    }

    #[test]
    fn the_apps_limits_apply() {
        let tight = MixTasks::new(
            10,
            MixLimits {
                max_inputs: 1,
                max_outputs: 1,
            },
        );
        let mut t = task("t", "u", None);
        t.spec
            .inputs
            .push(audio_input(Source::Stream("b".into()), 100));
        assert_eq!(
            tight.plan_start(t),
            Err(TaskError::Spec(MixError::TooManyInputs {
                count: 2,
                max: 1
            }))
        );
        let wide = MixTasks::new(
            10,
            MixLimits {
                max_inputs: 16,
                max_outputs: 4,
            },
        );
        let mut t = task("t", "u", None);
        t.spec.inputs = (0..16)
            .map(|i| audio_input(Source::Stream(format!("s{i}")), 100))
            .collect();
        assert!(wide.plan_start(t).is_ok());
    }

    #[test]
    fn auto_mix_follows_the_room() {
        let mut t = task("auto", "u", None);
        t.kind = TaskKind::Auto {
            extras: vec![
                AutoExtra {
                    source: Source::Stream("guest".into()),
                    volume: 50,
                    remove: false,
                },
                AutoExtra {
                    source: Source::Stream("muted".into()),
                    volume: 100,
                    remove: true,
                },
            ],
        };
        let room = vec![
            "s1".to_string(),
            "muted".to_string(),
            "auto-out".to_string(),
        ];
        let spec = t.effective_spec(&room, 9);
        let ids: Vec<_> = spec.inputs.iter().map(|i| i.source.clone()).collect();
        assert_eq!(
            ids,
            vec![Source::Stream("s1".into()), Source::Stream("guest".into())]
        );
        assert!(spec.inputs.iter().all(|i| !i.is_visible()));
        assert_eq!(spec.inputs[1].volume, 50);
    }
}
