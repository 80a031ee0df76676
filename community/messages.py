"""The Chinese text of the people-and-places domain's error codes (one place, to translate);
`init_app` adds them to an app."""

MESSAGES = {
    "bad_credentials": "手机号或密码不正确",
    "account_locked": "密码错误次数过多，账号已暂时锁定",
    "login_throttled": "登录失败次数过多，请稍后再试",
    "user_not_found": "找不到该用户",
    "account_disabled": "账号已停用",
    "phone_taken": "该手机号已注册",
    "id_number_taken": "该身份证号已注册",
    "guardian_consent_required": "未满 14 周岁需经监护人同意方可注册",
    "weak_password": "密码不符合要求",
    "wrong_password": "原密码不正确",
    "region_not_found": "找不到该地区",
    "region_code_taken": "地区编码已存在",
    "region_level_invalid": "地区层级须低于上级地区",
    "department_taken": "该地区已有同名部门",
    "scope_not_found": "找不到授权范围",
    "role_scope_invalid": "该角色不能按此范围授权",
    "role_exists": "该用户已有此授权",
    "code_invalid": "二维码无效",
    "code_expired": "二维码已过期，请刷新后再扫",
    "not_for_yourself": "不能对自己的账号执行此操作",
    "user_outranks": "该用户担任的职务超出您的管理范围，请由上级管理员办理",
    "reset_code_invalid": "手机号或重置码不正确，或重置码已失效；请向管理员重新获取",
}

# Details with the numbers a person needs: how many tries are left, and until when they must wait
# (a local time from core.clock, "18:35" or "11月26日 08:05").
DETAILS = {
    "bad_credentials": "手机号或密码不正确，还可尝试 {remaining} 次",
    "account_locked": "密码错误次数过多，账号已暂时锁定至 {until}，届时可再试，也可请管理员解锁",
    "login_throttled": "该账号在本网络登录失败次数过多，请于 {until} 后再试",
    "login_throttled_address": "本网络登录失败次数过多，请于 {until} 后再试",
    "reset_disabled_account": "该账号已停用，请先启用再重置密码",
}
