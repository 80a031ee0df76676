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
    "claim_name_mismatch": "该手机号已由社区登记为另一姓名，请核对姓名或联系社区",
    "id_number_mismatch": "身份证号与社区登记的不一致，请核对或联系社区",
    "import_file_unreadable": "无法读取该文件",
    "import_columns_missing": "文件缺少必需的列",
    "import_kind_invalid": "导入类型无效",
    "import_conflict": "导入期间数据被同时修改，请重试",
    "card_invalid": "会员卡无效",
    "card_revoked": "这张会员卡已作废（已补办新卡），请使用新卡",
    "password_incorrect": "密码不正确",
    "account_closed": "账号已注销",
    "close_has_roles": "您担任工作人员角色，请先由管理员撤销授权，再注销账号",
    "not_for_yourself": "不能对自己的账号执行此操作",
    "user_outranks": "该用户担任的职务超出您的管理范围，请由上级管理员办理",
    "reset_code_invalid": "手机号或重置码不正确，或重置码已失效；请向管理员重新获取",
}

# What an import says of a bad row (community.imports): one stable code each, in the report's
# `errors: [{row, column, code, message}]`; the text is formatted with the row's values.
IMPORT_ROW_MESSAGES = {
    "required": "{column}不能为空",
    "too_long": "{column}不能超过 {limit} 个字",
    "bad_text": "{column}含有无效字符",
    "code_format": "{rule}",
    "level_invalid": "层级须为 省、市、县/区、乡镇/街道、村、社区 或 网格",
    "parent_required": "请填写上级编码（顶级地区只能由系统管理员在命令行导入）",
    "parent_not_found": "找不到上级地区 {value}（须已存在，或在本文件前面的行中）",
    "level_order": "{level}不能设在{parent_level}之下",
    "code_parent_mismatch": "编码 {value} 不在上级地区 {parent} 的编码之下",
    "region_conflict": "地区 {value} 已存在，但层级或上级与本行不同",
    "region_not_found": "找不到地区 {value}",
    "region_level": "{column}须为村、社区或网格的编码",
    "out_of_scope": "{value} 不在您管辖的范围内",
    "duplicate_in_file": "与第 {first} 行重复",
    "phone_format": "手机号须为 11 位数字，以 1 开头",
    "id_number_invalid": "{problem}",
    "id_number_taken": "该身份证号已登记在另一手机号下",
    "id_number_mismatch": "与该居民已登记的身份证号不一致",
    "name_mismatch": "手机号 {value} 已登记为另一姓名",
    "household_format": "户号须为 1–32 位字母、数字、下划线或连字符",
    "household_not_found": "找不到户号 {value}（请先导入户）",
    "household_elsewhere": "户号 {value} 属于另一地区",
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
