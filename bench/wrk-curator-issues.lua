-- wrk script: POST /v1/issues batches as a watcher sends them, where almost every item is a
-- repeat of an issue the curator already holds (bench/run.py's curator scenario).
-- CURATOR_ITEMS names a file with one issue per line, cut just before its count: a request
-- takes the next CURATOR_BATCH of them (cycling) and gives each the count of the cycle, so
-- every appearance is a new sighting (a higher count), never a replay. Each request also carries
-- one issue of a fresh fingerprint (a new incident): ids are a 10-character salt
-- (CURATOR_SALT) and a 16-character counter, valid ULIDs that no run repeats.
-- The report (done) is bench/wrk-report.lua's, loaded from WRK_REPORT.

local alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
local salt = os.getenv("CURATOR_SALT")
local batch = tonumber(os.getenv("CURATOR_BATCH") or "500")
local items = {}
for line in io.lines(os.getenv("CURATOR_ITEMS")) do
   items[#items + 1] = line
end
local next_item = 0
-- Counts and fresh ids must keep growing across wrk runs (warm-up, rounds), each a new
-- process: both start from the seconds since CURATOR_T0, times a thousand.
local base = (os.time() - tonumber(os.getenv("CURATOR_T0"))) * 1000
local fresh = base

local function base32(n, width)
   local out = {}
   for i = width, 1, -1 do
      local digit = n % 32
      out[i] = alphabet:sub(digit + 1, digit + 1)
      n = (n - digit) / 32
   end
   return table.concat(out)
end

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"

request = function()
   local parts = {}
   for i = 1, batch - 1 do
      local index = next_item % #items
      -- The priming batch sent count 1; cycle c of this run sends base + c + 2.
      local count = base + math.floor(next_item / #items) + 2
      parts[i] = items[index + 1] .. count .. "}"
      next_item = next_item + 1
   end
   fresh = fresh + 1
   parts[batch] = string.format(
      '{"id":"%s%s","kind":"crashed","service":"new-%d","subject":"","severity":"warning",' ..
      '"state":"open","message":"new-%d exited with code 1","recommendation":"Look at its logs",' ..
      '"first_seen":"2026-01-02T03:04:05Z","last_seen":"2026-01-02T03:04:05Z",' ..
      '"facts":{"exit_code":1},"count":1}',
      salt, base32(fresh, 16), fresh, fresh)
   return wrk.format(nil, nil, nil, "[" .. table.concat(parts, ",") .. "]")
end

dofile(os.getenv("WRK_REPORT") or "bench/wrk-report.lua")
