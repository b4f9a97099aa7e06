-- wrk script for bench/run: sends the pre-signed requests of one batch made
-- by `gen batch`, each message id at most once per run.
--
--   wrk ... -s bench/load.lua URL -- BATCH_DIR THREADS [LABEL]
--
-- Thread k of THREADS reads only its own contiguous slice of BATCH_DIR/sigs,
-- so Lua memory is about n*44/THREADS bytes per thread. A thread that runs
-- out of ids starts its slice again and counts "wrapped" (for postern that
-- would turn deliveries into duplicates: bench/run fails the run).
-- response() counts every status other than the upstream's 204; done()
-- prints one "BENCH key=value ..." line that bench/run parses.

local threads = {}
local counter = 0

function setup(thread)
  thread:set("tid", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

local meta, sigs, lo, hi, i, host_hdr, path
local sig_width, fmt
non204 = 0
wrapped = 0
codes = ""
lua_kb = 0
local code_count = {}

function init(args)
  local dir, nthreads = args[1], tonumber(args[2])
  meta = dofile(dir .. "/meta.lua")
  sig_width = meta.sig_width
  local per = math.floor(meta.n / nthreads)
  lo = tid * per
  hi = lo + per
  local f = assert(io.open(dir .. "/sigs", "rb"))
  f:seek("set", lo * sig_width)
  sigs = f:read(per * sig_width)
  f:close()
  i = lo
  fmt = "%s%0" .. meta.id_digits .. "d"
  path = wrk.path
  local hostport = wrk.host
  if wrk.port then hostport = hostport .. ":" .. wrk.port end
  host_hdr = hostport
  collectgarbage()
  lua_kb = collectgarbage("count")
end

function request()
  if i >= hi then
    i = lo
    wrapped = wrapped + 1
  end
  local id = string.format(fmt, meta.id_prefix, i)
  local off = (i - lo) * sig_width
  local sig = string.sub(sigs, off + 1, off + sig_width)
  i = i + 1
  return "POST " .. path .. " HTTP/1.1\r\nHost: " .. host_hdr ..
    "\r\nContent-Type: application/json\r\nContent-Length: " .. (#meta.body_pre + #id + #meta.body_post) ..
    "\r\nsvix-id: " .. id .. "\r\nsvix-timestamp: " .. meta.ts ..
    "\r\nsvix-signature: v1," .. sig .. "\r\n\r\n" ..
    meta.body_pre .. id .. meta.body_post
end

function response(status, headers, body)
  if status ~= 204 then
    non204 = non204 + 1
    code_count[status] = (code_count[status] or 0) + 1
    local parts = {}
    for c, n in pairs(code_count) do table.insert(parts, c .. ":" .. n) end
    codes = table.concat(parts, ",")
  end
end

function done(summary, latency, requests)
  local bad, wraps, kb, allcodes = 0, 0, 0, {}
  for _, t in ipairs(threads) do
    bad = bad + t:get("non204")
    wraps = wraps + t:get("wrapped")
    kb = kb + t:get("lua_kb")
    local c = t:get("codes")
    if c ~= "" then table.insert(allcodes, c) end
  end
  local e = summary.errors
  io.write(string.format(
    "BENCH requests=%d duration_us=%d rps=%.1f p50_us=%d p90_us=%d p99_us=%d max_us=%d non204=%d codes=%s wrapped=%d lua_kb=%d err_connect=%d err_read=%d err_write=%d err_timeout=%d err_status=%d\n",
    summary.requests, summary.duration, summary.requests / (summary.duration / 1e6),
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    bad, (#allcodes > 0 and table.concat(allcodes, ";") or "-"), wraps, kb,
    e.connect, e.read, e.write, e.timeout, e.status))
end
