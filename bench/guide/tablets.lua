-- wrk script of bench/guide/run: simulated counter tablets.
--
--   wrk ... -s bench/guide/tablets.lua URL -- SESSIONS CASES MODE [PATH]
--
-- SESSIONS: lines "COOKIE<TAB>CSRF" (one per registered, logged-in tablet);
-- CASES: case ids, one a line.  Every request carries a tablet's cookies
-- and CSRF token, rotating over the tablets.
--   MODE "guide": requests alternate PUT /api/v1/visits/ID/answers/Q
--     (re-answering one of the always-asked questions tn_inu, tn_ninshin,
--     tn_shougai, yes and no in turn, so the guide is recomputed and the
--     answer written) and GET /api/v1/visits/ID, rotating over the cases.
--   MODE "static": GET PATH with the same headers (the nginx peer).
-- With MG_THINK_MS set (> 0) each connection waits a random time, uniform in
-- 0..2*MG_THINK_MS (mean MG_THINK_MS), before each of its requests, its
-- first included: a tablet paced by the person tapping it, instead of the
-- default closed loop where every connection sends its next request as soon
-- as the answer is in (which measures a saturated server: latency is then
-- connections / throughput).
-- With MG_LEAD_MS and MG_CONNS_PER_THREAD set, the first request of every
-- connection waits MG_LEAD_MS more, so that the TLS handshakes of all the
-- connections are over before the first request is timed (tablets keep
-- their connections); requests/s is counted over the time after it.
-- done() prints one machine-readable line:
--   RESULT requests duration_us rps p50_us p90_us p99_us max_us
--          connect read write status timeout

local think = tonumber(os.getenv("MG_THINK_MS") or "0") or 0
local questions = { "tn_inu", "tn_ninshin", "tn_shougai" }
local sessions, cases, mode, static_path
local n = 0

local function lines(path)
  local t = {}
  for l in io.lines(path) do
    if l ~= "" then t[#t + 1] = l end
  end
  return t
end

-- the thread number, to start each thread elsewhere in the rotation
local counter = 0
function setup(thread)
  counter = counter + 1
  thread:set("tid", counter)
end

function init(args)
  sessions = {}
  for _, l in ipairs(lines(args[1])) do
    local cookie, csrf = l:match("^([^\t]*)\t(.*)$")
    sessions[#sessions + 1] = { cookie = cookie, csrf = csrf }
  end
  cases = lines(args[2])
  mode = args[3]
  static_path = args[4]
  n = (tid or 1) * 7919
  math.randomseed((tid or 1) * 104729 + os.time())
end

local lead = tonumber(os.getenv("MG_LEAD_MS") or "0") or 0
local firsts = tonumber(os.getenv("MG_CONNS_PER_THREAD") or "0") or 0
local delays = 0
if think > 0 or (lead > 0 and firsts > 0) then
  -- called before each request of a connection, its first included; the
  -- first calls of a thread are its connections' first requests
  function delay()
    delays = delays + 1
    local d = 0
    if delays <= firsts then d = lead end
    if think > 0 then d = d + math.random(0, 2 * think) end
    return d
  end
end

function request()
  n = n + 1
  local s = sessions[n % #sessions + 1]
  local headers = { ["Cookie"] = s.cookie, ["X-CSRF-Token"] = s.csrf }
  if mode == "static" then
    return wrk.format("GET", static_path, headers)
  end
  -- consecutive pairs (PUT, GET) go to the same case
  local k = math.floor(n / 2)
  local id = cases[k % #cases + 1]
  if n % 2 == 0 then
    local round = math.floor(k / #cases)
    local q = questions[round % #questions + 1]
    local answer = (math.floor(round / #questions) % 2 == 0) and "yes" or "no"
    headers["Content-Type"] = "application/json"
    return wrk.format("PUT", "/api/v1/visits/" .. id .. "/answers/" .. q, headers,
      '{"answer":"' .. answer .. '"}')
  end
  return wrk.format("GET", "/api/v1/visits/" .. id, headers)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %d %d %.1f %d %d %d %d %d %d %d %d %d\n",
    summary.requests, summary.duration,
    summary.requests / math.max(summary.duration / 1e6 - lead / 1000, 0.001),
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    e.connect, e.read, e.write, e.status, e.timeout))
end
