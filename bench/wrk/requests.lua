-- Replays pre-generated requests, each at most once, and tallies response statuses.
--
-- Usage: wrk -t T -c C -d D -s bench/wrk/requests.lua URL -- FILE T
-- FILE holds one request per line: METHOD <tab> PATH <tab> AUTHORIZATION <tab> IDEMPOTENCY-KEY <tab> BODY
-- (empty fields are left out). Thread n of T replays its own contiguous slice of the file, so no two
-- requests share a line (a volunteer's token, a basket's key). A thread that runs past its slice
-- starts it again and counts `reused`: the figure is then flagged, as repeats do less work.
-- wrk itself counts only socket errors; done() prints one machine-readable line:
--   WRK requests=… duration_us=… p50_us=… p99_us=… ok=… non2xx=… reused=… connect=… read=… write=… timeout=… first_bad=…

local threads = {}

function setup(thread)
   thread:set("index", #threads)
   table.insert(threads, thread)
end

function init(args)
   local file, total = args[1], tonumber(args[2])
   local lines = {}
   for line in io.lines(file) do
      lines[#lines + 1] = line
   end
   local per = math.floor(#lines / total)
   local first = index * per + 1
   requests = {}
   for i = first, first + per - 1 do
      local method, path, auth, key, body = lines[i]:match("^([^\t]*)\t([^\t]*)\t([^\t]*)\t([^\t]*)\t(.*)$")
      local headers = { ["Content-Type"] = "application/json" }
      if auth ~= "" then headers["Authorization"] = auth end
      if key ~= "" then headers["Idempotency-Key"] = key end
      requests[#requests + 1] = wrk.format(method, path, headers, body)
   end
   nxt, reused, ok, non2xx, first_bad = 1, 0, 0, 0, ""
end

function request()
   if nxt > #requests then
      nxt = 1
      reused = reused + 1
   elseif reused > 0 then
      reused = reused + 1
   end
   local r = requests[nxt]
   nxt = nxt + 1
   return r
end

function response(status, headers, body)
   if status >= 200 and status < 300 then
      ok = ok + 1
   else
      non2xx = non2xx + 1
      if first_bad == "" then
         first_bad = status .. ":" .. (body or ""):sub(1, 160):gsub("%s+", "_")
      end
   end
end

function done(summary, latency, requests)
   local tot = { ok = 0, non2xx = 0, reused = 0 }
   local bad = ""
   for _, t in ipairs(threads) do
      for k, _ in pairs(tot) do
         tot[k] = tot[k] + (t:get(k) or 0)
      end
      if bad == "" then bad = t:get("first_bad") or "" end
   end
   local e = summary.errors
   io.write(string.format(
      "WRK requests=%d duration_us=%d p50_us=%d p99_us=%d ok=%d non2xx=%d reused=%d connect=%d read=%d write=%d timeout=%d first_bad=%s\n",
      summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), tot.ok, tot.non2xx,
      tot.reused, e.connect, e.read, e.write, e.timeout, bad))
end
