-- wrk script: GET the paths in ARCHIVE_PATHS (separated by "|") in turn
-- (bench/archive_scenarios.py). Env: ARCHIVE_PATHS, WRK_REPORT.

local paths = {}
for path in string.gmatch(os.getenv("ARCHIVE_PATHS"), "[^|]+") do
   paths[#paths + 1] = path
end
local next_path = 0

request = function()
   next_path = next_path % #paths + 1
   return wrk.format("GET", paths[next_path])
end

dofile(os.getenv("WRK_REPORT"))
