//! The actions this server answers, their families and the vendor's rate limits.

use super::codes::Family;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    AddStream,
    DeleteStream,
    DescribeSimpleStreamList,
    DescribeUserNum,
    DescribeUsers,
    DescribeUserList,
    KickoutUser,
    CloseRoom,
    ForbidRTCStream,
    ResumeRTCStream,
    ForbidRTCStreams,
    ResumeRTCStreams,
    DescribeRTCStreamState,
    StartMix,
    StopMix,
    GetMixTaskInfo,
    StartAutoMix,
    StopAutoMix,
    StartCloudTranscode,
    StopCloudTranscode,
}

impl Action {
    pub const ALL: [Action; 20] = [
        Action::AddStream,
        Action::DeleteStream,
        Action::DescribeSimpleStreamList,
        Action::DescribeUserNum,
        Action::DescribeUsers,
        Action::DescribeUserList,
        Action::KickoutUser,
        Action::CloseRoom,
        Action::ForbidRTCStream,
        Action::ResumeRTCStream,
        Action::ForbidRTCStreams,
        Action::ResumeRTCStreams,
        Action::DescribeRTCStreamState,
        Action::StartMix,
        Action::StopMix,
        Action::GetMixTaskInfo,
        Action::StartAutoMix,
        Action::StopAutoMix,
        Action::StartCloudTranscode,
        Action::StopCloudTranscode,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Action::AddStream => "AddStream",
            Action::DeleteStream => "DeleteStream",
            Action::DescribeSimpleStreamList => "DescribeSimpleStreamList",
            Action::DescribeUserNum => "DescribeUserNum",
            Action::DescribeUsers => "DescribeUsers",
            Action::DescribeUserList => "DescribeUserList",
            Action::KickoutUser => "KickoutUser",
            Action::CloseRoom => "CloseRoom",
            Action::ForbidRTCStream => "ForbidRTCStream",
            Action::ResumeRTCStream => "ResumeRTCStream",
            Action::ForbidRTCStreams => "ForbidRTCStreams",
            Action::ResumeRTCStreams => "ResumeRTCStreams",
            Action::DescribeRTCStreamState => "DescribeRTCStreamState",
            Action::StartMix => "StartMix",
            Action::StopMix => "StopMix",
            Action::GetMixTaskInfo => "GetMixTaskInfo",
            Action::StartAutoMix => "StartAutoMix",
            Action::StopAutoMix => "StopAutoMix",
            Action::StartCloudTranscode => "StartCloudTranscode",
            Action::StopCloudTranscode => "StopCloudTranscode",
        }
    }

    /// Action names are case-sensitive, as the vendor's.
    pub fn parse(name: &str) -> Option<Action> {
        Action::ALL.into_iter().find(|a| a.name() == name)
    }

    pub fn family(self) -> Family {
        match self {
            Action::AddStream
            | Action::DeleteStream
            | Action::DescribeSimpleStreamList
            | Action::DescribeUserNum
            | Action::DescribeUsers
            | Action::DescribeUserList
            | Action::KickoutUser
            | Action::CloseRoom => Family::Room,
            Action::ForbidRTCStream
            | Action::ResumeRTCStream
            | Action::ForbidRTCStreams
            | Action::ResumeRTCStreams
            | Action::DescribeRTCStreamState => Family::Media,
            Action::StartMix
            | Action::StopMix
            | Action::GetMixTaskInfo
            | Action::StartAutoMix
            | Action::StopAutoMix
            | Action::StartCloudTranscode
            | Action::StopCloudTranscode => Family::Mix,
        }
    }

    /// The vendor's documented per-app limit (requests per second), production and test.
    pub fn default_rate(self, is_test: bool) -> f64 {
        match (self, is_test) {
            (Action::AddStream | Action::DeleteStream | Action::DescribeUserNum, false) => 10.0,
            (Action::AddStream | Action::DeleteStream | Action::DescribeUserNum, true) => 1.0,
            (Action::DescribeSimpleStreamList, _) => 50.0,
            (Action::DescribeUsers, _) => 10.0,
            (Action::DescribeUserList, _) => 200.0,
            (Action::KickoutUser, _) => 50.0,
            (Action::CloseRoom, _) => 1.0,
            (
                Action::ForbidRTCStream
                | Action::ResumeRTCStream
                | Action::ForbidRTCStreams
                | Action::ResumeRTCStreams,
                false,
            ) => 20.0,
            (
                Action::ForbidRTCStream
                | Action::ResumeRTCStream
                | Action::ForbidRTCStreams
                | Action::ResumeRTCStreams,
                true,
            ) => 5.0,
            (Action::DescribeRTCStreamState, false) => 40.0,
            (Action::DescribeRTCStreamState, true) => 10.0,
            (
                Action::StartMix
                | Action::StopMix
                | Action::GetMixTaskInfo
                | Action::StartAutoMix
                | Action::StopAutoMix
                | Action::StartCloudTranscode
                | Action::StopCloudTranscode,
                _,
            ) => 100.0,
        }
    }

    /// The vendor's per-room interval (seconds between two calls for one room), if any.
    pub fn default_room_interval(self) -> Option<f64> {
        match self {
            Action::DescribeSimpleStreamList => Some(10.0),
            Action::DescribeUserList => Some(1.0),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_case_sensitive() {
        for a in Action::ALL {
            assert_eq!(Action::parse(a.name()), Some(a));
        }
        assert_eq!(Action::parse("addstream"), None);
        assert_eq!(
            Action::parse("CloseRoom").map(Action::family),
            Some(Family::Room)
        );
        assert_eq!(
            Action::parse("StartMix").map(Action::family),
            Some(Family::Mix)
        );
    }
}
