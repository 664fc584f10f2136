-- wrk script for bench/bench_load.py: POST /api/ask with a rotating set of questions,
-- one in six a follow-up turn sent with the previous answer as context.
-- Each thread starts at its own point of the list and counts its responses by
-- status; done() prints the totals and a JSON summary for the driver to parse.

local questions = {
  "违章搭建怎么举报", "邻居私搭乱建找谁", "路边摊占道经营怎么办", "夜市太吵了睡不着",
  "罚款怎么交", "对处罚决定不服怎么办", "可以申请听证吗", "罚款交不起能分期吗",
  "城管局在哪", "你们几点上班", "怎么网上留言", "举报人信息保密吗",
  "信息公开申请怎么写", "申请了好久没回音", "执法记录仪的视频能调取吗", "城管执法粗暴找谁投诉",
  "有奖举报", "这事是不是不归你们管", "你好", "你是机器人吗",
  "违张搭建咋举报", "違章建築怎麼舉報", "量子计算机的退相干时间", "我家水管坏了找谁修",
  "广告牌挂得太多了", "渣土车撒漏", "门前三包是什么", "共享单车乱停",
  "油烟扰民", "工地夜间施工太吵",
}

-- Follow-up turns with the previous answer as context (one more search each).
local followups = {
  {"那罚多少钱", "vendor-report"}, {"能分期吗", "penalty-fine-payment"},
  {"烧纸呢", "burn-open"}, {"要多久", "channel-how-to-report"},
  {"那路灯不亮呢", "green-manhole"}, {"垃圾分类怎么分", "vendor-report"},
}

local requests = {}
local counter = 0

function init(args)
  local headers = { ["Content-Type"] = "application/json" }
  for i, q in ipairs(questions) do
    local body = '{"q": "' .. q .. '", "session": "bench"}'
    requests[i] = wrk.format("POST", "/api/ask", headers, body)
  end
  for _, turn in ipairs(followups) do
    local body = '{"q": "' .. turn[1] .. '", "context": {"faq_id": "' .. turn[2]
      .. '"}, "session": "bench"}'
    table.insert(requests, wrk.format("POST", "/api/ask", headers, body))
  end
  counter = ((thread_id or 0) * 7) % #requests
end

function request()
  counter = counter % #requests + 1
  return requests[counter]
end

function response(status, headers, body)
  -- A global per status code: thread:get() in done() reads plain values only.
  local name = "n" .. status
  _G[name] = (_G[name] or 0) + 1
end

local threads = {}

function setup(thread)
  table.insert(threads, thread)
  thread:set("thread_id", #threads)
end

function done(summary, latency, requests)
  local total = {}
  for _, thread in ipairs(threads) do
    for _, code in ipairs({200, 400, 404, 413, 415, 429, 500, 502, 503}) do
      local n = thread:get("n" .. code)
      if n then total[code] = (total[code] or 0) + n end
    end
  end
  for code, n in pairs(total) do
    io.write(string.format("STATUS %d %d\n", code, n))
  end
  io.write(string.format("JSON {\"requests\": %d, \"duration_us\": %d, \"p50_us\": %d, \"p90_us\": %d, \"p99_us\": %d, \"max_us\": %d, \"connect_errors\": %d, \"read_errors\": %d, \"write_errors\": %d, \"timeouts\": %d, \"non_2xx\": %d}\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, summary.errors.connect, summary.errors.read,
    summary.errors.write, summary.errors.timeout, summary.errors.status))
end
