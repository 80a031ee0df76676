"""People and places: regions (市 › 县 › 乡镇 › 村/社区 › 网格), departments, households, residents
and the roles they hold. Knows nothing of points, activities or stores (those build on it)."""
