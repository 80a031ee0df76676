"""Chinese titles of the statistics domain's error codes (one place, so they can be translated)."""

MESSAGES = {
    "report_not_found": "找不到该通报",
    "stats_table_unknown": "没有这张统计表",
}
