-- wrk script: POST /v1/records batches of fresh records (bench/archive_scenarios.py).
-- Every record gets a new, valid ULID: a 10-character salt per wrk process (the 3-character
-- ARCHIVE_SALT, first character 0-7, then the start time in seconds: a round the harness
-- measures again starts a second or more later) and a 16-character counter, so no run
-- repeats another's ids. Timestamps
-- climb from ARCHIVE_TS_BASE (unix seconds) by 1 ms per record; kinds and services follow a
-- fixed mix, so the archive looks like a fleet's history.
-- Env: ARCHIVE_SALT, ARCHIVE_BATCH (records per request), ARCHIVE_TS_BASE, WRK_REPORT.

local alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
local batch = tonumber(os.getenv("ARCHIVE_BATCH") or "100")
local ts_base = tonumber(os.getenv("ARCHIVE_TS_BASE"))
local counter = 0

-- 100 slots: 70 % event, 15 % issue, 8 % incident, 5 % plan, 2 % report.
local kinds = {}
for i = 1, 100 do
   kinds[i] = (i <= 70 and "event") or (i <= 85 and "issue") or (i <= 93 and "incident")
      or (i <= 98 and "plan") or "report"
end

local function base32(n, width)
   local out = {}
   for i = width, 1, -1 do
      local digit = n % 32
      out[i] = alphabet:sub(digit + 1, digit + 1)
      n = (n - digit) / 32
   end
   return table.concat(out)
end

local salt = os.getenv("ARCHIVE_SALT"):sub(1, 3) .. base32(os.time(), 7)

local function record()
   counter = counter + 1
   local ms = ts_base * 1000 + counter
   local seconds = math.floor(ms / 1000)
   local ts = os.date("!%Y-%m-%dT%H:%M:%S", seconds) .. string.format(".%03dZ", ms % 1000)
   return string.format(
      '{"id":"%s%s","kind":"%s","service":"svc-%d","ts":"%s",' ..
      '"body":{"event_type":"restart","component":"worker","detail":"container restarted after exit 137","n":%d}}',
      salt, base32(counter, 16), kinds[counter % 100 + 1], counter % 47, ts, counter)
end

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"

request = function()
   local records = {}
   for i = 1, batch do
      records[i] = record()
   end
   return wrk.format(nil, nil, nil, "[" .. table.concat(records, ",") .. "]")
end

dofile(os.getenv("WRK_REPORT"))
