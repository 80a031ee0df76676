"""The Chinese text of the moral supermarket's error codes (one place, to translate);
`init_app` adds them to an app."""

MESSAGES = {
    "stock_too_large": "库存超过上限",
    "out_of_stock": "库存不足",
    "monthly_limit": "超出本月兑换限额",
    "store_not_found": "找不到该超市",
    "item_not_found": "找不到该商品",
    "item_taken": "本店已有同名商品",
    "store_taken": "该地区已有同名超市",
    "item_inactive": "该商品已下架",
    "basket_empty": "请选择要兑换的商品",
    "resident_required": "请扫描居民会员码或选择居民",
    "already_voided": "该兑换已撤销",
    "void_too_late": "店员只能撤销当天的兑换，请联系管理员",
    "stock_delta_invalid": "数量不正确",
    "code_required": "请扫描居民的会员码",
    "code_mismatch": "会员码与该笔兑换的居民不符",
}
