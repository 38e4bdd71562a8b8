-- wrk script: POST /heartbeat with the seed's payload, cycling through BENCH_SERVICES distinct
-- service names (BENCH_SERVICES, default 1000) so the server's table is exercised, not one hot entry.
-- The report (done) is bench/wrk-report.lua's, loaded from WRK_REPORT.
dofile(os.getenv("WRK_REPORT") or "bench/wrk-report.lua")

local services = tonumber(os.getenv("BENCH_SERVICES") or "1000")
-- Where to start in the cycle, so a run can go on where the previous one stopped.
local counter = tonumber(os.getenv("BENCH_START") or "0")

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"

request = function()
   counter = counter + 1
   local body = string.format(
      '{"service":"edge-cam%06d","phase":"edge_loop","timeout_seconds":3600}',
      counter % services)
   return wrk.format(nil, nil, nil, body)
end
