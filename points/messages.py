"""The Chinese text of the points domain's error codes (one place, to translate);
`init_app` adds them to an app."""

MESSAGES = {
    "insufficient_points": "积分不足",
    "already_reversed": "该笔积分已冲正",
    "not_a_resident": "找不到该居民",
    "deed_type_unknown": "找不到该事迹类型",
    "deed_not_pending": "该记录已审核，不能重复审核",
    "deed_not_in_notice": "该记录不在公示期内",
    "same_person": "不能审核或处理本人提交的事项",
    "reason_required": "请填写原因",
    "certificate_not_found": "找不到该证明",
    "period_invalid": "起止日期不正确",
    "amount_invalid": "积分须为非零整数",
    "self_dealing": "不能为本人或本户成员办理此项操作",
    "deed_not_found": "找不到该记录",
    "objection_not_found": "找不到该异议",
    "objection_not_open": "该异议已处理",
    "adjustment_not_found": "找不到该调整",
    "adjustment_not_pending": "该调整已处理，不能重复处理",
    "deed_type_exists": "该地区已有此编码的事迹类型",
    "deed_type_not_found": "找不到该事迹类型",
}
