-- wrk script for the benchmark: one connection per wrk thread, so each thread is one
-- client with its own token, and request() and response() strictly alternate; that lets
-- us time every request and keep its status (wrk alone reports only a merged histogram).
--
-- wrk -t N -c N -s load.lua URL -- <mode> <tokens file> <samples file> <event id> <first token>
--                                   <connections in all>
-- Connection k of all C owns tokens k, k + C, k + 2C, ... and books as each in turn, so
-- there can be more customers than connections.
--   mode "book":  POST /api/bookings/ {"event": id, "tickets_booked": 1..4}
--   mode "get":   GET the URL's path

local ffi = require("ffi")
ffi.cdef [[
  typedef struct { long tv_sec; long tv_nsec; } timespec;
  int clock_gettime(int clk_id, timespec *tp);
]]
local ts = ffi.new("timespec")
local function now_us()
  ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC: shared by every process on the machine
  return tonumber(ts.tv_sec) * 1000000 + tonumber(ts.tv_nsec) / 1000
end

local threads = {}
local next_id = 0

function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

function init(args)
  mode = args[1]
  samples_path = args[3]
  event_id = args[4]
  local all = {}
  for line in io.lines(args[2]) do all[#all + 1] = line end
  -- Each wrk process starts at its own offset, so every connection has customers of its own.
  local first, stride = tonumber(args[5]) + id, tonumber(args[6] or 1)
  pool = {}
  for k = first, #all - 1, stride do pool[#pool + 1] = all[k + 1] end
  if #pool == 0 then pool[1] = all[(first % #all) + 1] end
  turn = 0
  math.randomseed((tonumber(args[5]) + id) * 7919 + 17)
  starts, latencies, codes = {}, {}, {}
  n = 0
  path = wrk.path
end

function request()
  started = now_us()
  turn = turn % #pool + 1
  local headers = { ["Authorization"] = "Bearer " .. pool[turn] }
  if mode == "book" then
    headers["Content-Type"] = "application/json"
    local body = '{"event": ' .. event_id .. ', "tickets_booked": ' .. math.random(1, 4) .. '}'
    return wrk.format("POST", "/api/bookings/", headers, body)
  end
  return wrk.format("GET", path, headers)
end

function response(status, headers, body)
  local finished = now_us()
  n = n + 1
  starts[n] = started
  latencies[n] = finished - started
  codes[n] = status
end

function done(summary, latency, requests)
  local out = io.open(threads[1]:get("samples_path"), "w")
  for _, thread in ipairs(threads) do
    local s, l, c = thread:get("starts"), thread:get("latencies"), thread:get("codes")
    for i = 1, #c do
      out:write(string.format("%.0f,%.0f,%d\n", s[i], l[i], c[i]))
    end
  end
  out:close()
end
