"""The Chinese text of the volunteer domain's error codes (one place, to translate);
`init_app` adds them to an app."""

MESSAGES = {
    "activity_not_found": "找不到该活动",
    "activity_not_open": "该活动当前不能报名或签到",
    "activity_state": "活动当前状态不允许此操作",
    "already_signed_up": "您已报名该活动",
    "signup_closed": "报名已截止",
    "not_signed_up": "您没有报名该活动",
    "too_late_to_cancel": "活动已开始，不能取消报名",
    "token_out_of_window": "不在活动签到时间内",
    "already_checked_out": "您已签退",
    "not_confirmed": "您的报名尚未确认，不能签到",
    "times_invalid": "签到、签退时间不正确",
    "not_auto_closed": "只有自动签退的记录需要确认",
    "volunteer_not_signed_up": "该志愿者没有报名或尚未确认，不能补录",
    "open_elsewhere": "您在另一个活动的签到还没有签退，请先签退",
    "times_in_future": "签到、签退时间不能在将来",
    "attendance_annulled": "该签到记录已作废",
    "not_pending_review": "该记录没有待审核的补录",
    "activity_has_attendance": "该活动已有签到记录，不能取消；请先作废签到记录（积分会全额冲正）",
    "makeup_pending": "已提交补录，正在等待审核员审核",
    "activity_settled": "已有签到记录，不能再修改活动时间、类别或积分标准",
    "region_outside_department": "活动地点须在本部门所辖地区之内",
    "close_attendance_open": "您还有未签退的活动，请先签退再注销账号",
    "close_makeup_pending": "您有补录正在等待审核，请审核完成后再注销账号",
}

# The venue code's refusals share their codes with the sign-in token's (core titles those "登录…");
# a scan's error carries these titles itself (`tokens.refused`).
VENUE_CODE = {
    "token_expired": "二维码已过期，请扫描屏幕上最新的二维码",
    "token_invalid": "二维码无效",
}
