#!/bin/sh
# One backup of the app's database, then the retention sweep (docs/deploy.md "Backups").
# Usage: deploy/backup.sh DIR [DAILY_DAYS=14] [MONTHLY_MONTHS=12]
# Keeps every backup of the last DAILY_DAYS days and the first backup of each month for
# MONTHLY_MONTHS months. Runs from the app's directory with its environment (DATABASE_URL, …).
set -eu
dir=${1:?usage: backup.sh DIR [DAILY_DAYS] [MONTHLY_MONTHS]}
days=${2:-14}
months=${3:-12}
flask=${FLASK:-.venv/bin/flask}

case "${DATABASE_URL:-}" in
  postgres*) ext=dump ;;
  *) ext=db ;;
esac
mkdir -p "$dir"
stamp=$(date +%Y%m%dT%H%M%S)
file="$dir/moralcredit-$stamp.$ext"
"$flask" --app wsgi db backup "$file"
if [ "$ext" = dump ]; then
  pg_restore --list "$file" >/dev/null  # the archive reads back
fi

# Retention: monthly backups (the first file of each month) are kept apart, then pruned by age.
month=$(date +%Y%m)
if ! ls "$dir"/monthly-"$month"* >/dev/null 2>&1; then
  ln "$file" "$dir/monthly-$month.$ext"
fi
find "$dir" -maxdepth 1 -name 'moralcredit-*' -mtime +"$days" -delete
find "$dir" -maxdepth 1 -name 'monthly-*' -mtime +$((months * 31)) -delete
echo "kept: $(ls "$dir" | wc -l) files, $(du -sh "$dir" | cut -f1) in $dir"
