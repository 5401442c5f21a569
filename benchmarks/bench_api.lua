-- wrk script for benchmarks/bench_api.py: POST /api/v1/tickets (or the reference endpoint, args[3]), each request with its own
-- external_id and Idempotency-Key. Counts per thread what it sent and what came back, so the
-- driver can compare tickets created with requests accepted (and those cut off in flight).
local threads = {}
local counter = 1

function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

function init(args)
  run = args[1] or "run"
  token = args[2] or ""
  path = args[3] or "/api/v1/tickets"
  sent, received, created, other = 0, 0, 0, 0
  body_text = string.rep("The invoice for March shows a charge I do not recognise. ", 5)
end

function request()
  sent = sent + 1
  local external_id = string.format("bench-%s-%d-%d", run, id, sent)
  local body = string.format(
    '{"subject":"Unknown charge %d","body":"%s","requester_email":"customer%d@example.com","external_id":"%s"}',
    sent, body_text, sent % 997, external_id)
  local headers = {
    ["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer " .. token,
    ["Idempotency-Key"] = external_id,
  }
  return wrk.format("POST", path, headers, body)
end

function response(status, headers, body)
  received = received + 1
  if status == 201 then created = created + 1 else other = other + 1 end
end

function done(summary, latency, requests)
  local totals = {sent = 0, received = 0, created = 0, other = 0}
  for _, thread in ipairs(threads) do
    for key, _ in pairs(totals) do totals[key] = totals[key] + thread:get(key) end
  end
  io.write(string.format(
    'WRK_RESULT {"requests": %d, "duration_us": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d, ' ..
    '"sent": %d, "received": %d, "created_201": %d, "other_status": %d, "errors_connect": %d, ' ..
    '"errors_read": %d, "errors_write": %d, "errors_timeout": %d, "errors_status": %d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, totals.sent, totals.received, totals.created, totals.other,
    summary.errors.connect, summary.errors.read, summary.errors.write, summary.errors.timeout,
    summary.errors.status))
end
