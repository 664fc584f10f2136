/*!
 * 智能小城 — the embeddable FAQ chat widget of the bureau's portal.
 *
 * Embed with one tag:
 *   <script src="https://host/widget.js" data-endpoint="https://host" defer></script>
 * data-endpoint is the API base URL ("" = the page's own origin); the widget's
 * stylesheet and mascot are loaded from "widget/" beside the script (override
 * with data-assets). Vanilla JavaScript, no framework, nothing from a CDN;
 * everything lives in an open Shadow DOM so portal and widget cannot restyle
 * each other.
 *
 * Safety: text from the visitor or the FAQ bank is only ever written with
 * textContent, and links are only made from http(s), tel and relative URLs.
 */
(function () {
  "use strict";

  if (window.XiaochengWidget) {
    return;
  }
  var script = document.currentScript;

  // The server's limit (MAX_QUESTION_CHARS); /api/hot may advertise another one.
  var maxQuestionChars = 200;
  // The counter appears this many characters before the limit.
  var COUNTER_MARGIN = 30;
  // A follow-up sends the last answered FAQ's id with this many next questions.
  var CONTEXT_TURNS = 2;
  // The category of faq/smalltalk.yaml: such replies are conversation, not answers.
  var SMALLTALK_CATEGORY = "闲聊";
  var MAX_STORED_MESSAGES = 60;
  var SUGGEST_DELAY_MS = 180;
  var MAX_SUGGESTIONS = 8;
  var TYPING_MIN_MS = 350;
  var STATE_KEY = "xiaocheng:v1:state";
  var SESSION_KEY = "xiaocheng:v1:session";
  var LARGE_KEY = "xiaocheng:v1:large";
  var SVG_NS = "http://www.w3.org/2000/svg";

  var TEXT = {
    launcher: "问小城",
    launcherHint: "（智能小城在线问答）",
    dialog: "智能小城在线问答",
    title: "智能小城",
    subtitle: "城市管理政策在线问答",
    large: "大字",
    largeLabel: "大字模式",
    close: "关闭在线问答",
    log: "对话记录",
    inputLabel: "请输入您的问题",
    placeholder: "请在这里输入您的问题",
    send: "发送",
    suggestLabel: "推荐问题",
    botSays: "小城：",
    youSay: "您：",
    greeting: "您好！我是智能小城，可以为您解答城市管理方面的常见问题。",
    hot: "大家都在问：",
    related: "您可能还想问：",
    hints: "您可以试试这些问题：",
    channels: "人工服务渠道：",
    links: "相关链接：",
    basis: "依据：",
    newWindow: "（在新窗口打开）",
    askHelpful: "这个回答对您有帮助吗？",
    helpful: "有帮助",
    unhelpful: "没帮助",
    thanksUp: "感谢您的反馈！",
    thanksDown: "感谢您的反馈，我们会继续改进。",
    feedbackFailed: "反馈没有提交成功，请稍后再试。",
    typing: "小城正在查找答案…",
    empty: "请先输入您的问题。",
    unreachable: "抱歉，小城的服务暂时连接不上，问题出在我们这边。请稍后点“重试”，或通过下面的人工渠道咨询。",
    server: "抱歉，小城的服务暂时出了问题。请稍后点“重试”，或通过下面的人工渠道咨询。",
    retry: "重试",
    retryLabel: "重试：重新发送“{q}”",
    noneOfThese: "都不是",
    noneOfTheseSaid: "都不是",
    rephrase: "没关系，请换个说法再问一次：说清楚发生了什么事、在什么地方，一次只问一件事。例如“小区门口有人占道摆摊，怎么反映？”",
    speak: "朗读",
    speakLabel: "朗读这条回答",
    stopSpeaking: "停止",
    stopLabel: "停止朗读",
    counterLeft: "还可以输入{n}字",
    counterOver: "已超出{n}字",
    tooLong: "问题最多{max}字，现在超出了{n}字。请删减后再发送，例如只保留发生了什么、在什么地方。",
    rateLimited: "您提问太频繁了，请稍等一会儿再试。",
    disclaimer: "答复仅供参考，具体以法律法规和本局公告为准。"
  };

  var endpoint = "";
  var assetBase = "";
  try {
    var scriptSrc = (script && script.src) || window.location.href;
    endpoint = ((script && script.getAttribute("data-endpoint")) || "").replace(/\/+$/, "");
    var assets = script && script.getAttribute("data-assets");
    assetBase = assets
      ? new URL(assets.replace(/\/*$/, "/"), window.location.href).href
      : new URL("widget/", new URL(".", scriptSrc)).href;
  } catch (e) {
    assetBase = "/widget/";
  }

  // ---- small helpers -----------------------------------------------------

  /** Create an element; "text" sets textContent, "on*" adds a listener. */
  function h(tag, attrs, children) {
    var el = document.createElement(tag);
    if (attrs) {
      Object.keys(attrs).forEach(function (key) {
        var value = attrs[key];
        if (value === null || value === undefined || value === false) {
          return;
        }
        if (key === "text") {
          el.textContent = String(value);
        } else if (key === "className") {
          el.className = value;
        } else if (key.slice(0, 2) === "on") {
          el.addEventListener(key.slice(2), value);
        } else {
          el.setAttribute(key, value === true ? "" : String(value));
        }
      });
    }
    (children || []).forEach(function (child) {
      if (child === null || child === undefined) {
        return;
      }
      el.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
    });
    return el;
  }

  /** A decorative inline SVG icon built from path data (never from markup). */
  function icon(name) {
    var paths = {
      close: ["M6 6 L18 18", "M18 6 L6 18"],
      send: ["M4 12 L20 4 L14 20 L11 13 Z"],
      up: ["M7 11 V20 H4 V11 Z", "M7 11 L11 4 Q13 3 13.5 5 L12.5 9 H18.5 Q20.5 9 20 11 L18.5 18.5 Q18 20 16.5 20 H7"],
      down: ["M7 13 V4 H4 V13 Z", "M7 13 L11 20 Q13 21 13.5 19 L12.5 15 H18.5 Q20.5 15 20 13 L18.5 5.5 Q18 4 16.5 4 H7"],
      phone: ["M6 3 H9.5 L11 8 L8.5 9.5 Q10 13.5 14.5 15.5 L16 13 L21 14.5 V18 Q21 20.5 18.5 20.5 Q10 20 4.5 12.5 Q3 9 3.5 5.5 Q4 3 6 3 Z"],
      speak: ["M4 9 H8 L13 5 V19 L8 15 H4 Z", "M16 9 Q18 12 16 15", "M18.5 6.5 Q22 12 18.5 17.5"],
      link: ["M10 14 L20 4", "M14 4 H20 V10", "M18 14 V19 Q18 20 17 20 H5 Q4 20 4 19 V7 Q4 6 5 6 H10"]
    };
    var svg = document.createElementNS(SVG_NS, "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("aria-hidden", "true");
    svg.setAttribute("focusable", "false");
    svg.setAttribute("class", "xc-icon xc-icon-" + name);
    (paths[name] || []).forEach(function (d) {
      var path = document.createElementNS(SVG_NS, "path");
      path.setAttribute("d", d);
      svg.appendChild(path);
    });
    return svg;
  }

  function srOnly(text) {
    return h("span", { className: "xc-sr", text: text });
  }

  /** Return an absolute URL if it is http(s), tel or relative, else null. */
  function safeHref(url) {
    if (typeof url !== "string" || !url.trim()) {
      return null;
    }
    var parsed;
    try {
      parsed = new URL(url.trim(), window.location.href);
    } catch (e) {
      return null;
    }
    if (["http:", "https:", "tel:"].indexOf(parsed.protocol) < 0) {
      return null;
    }
    return parsed.href;
  }

  function linkTo(item, className) {
    var href = safeHref(item && item.url);
    var title = item && typeof item.title === "string" && item.title ? item.title : null;
    if (!href || !title) {
      return null;
    }
    var isTel = href.slice(0, 4) === "tel:";
    var a = h("a", { className: className, href: href }, [
      isTel ? icon("phone") : null,
      h("span", { text: title }),
      isTel ? null : srOnly(TEXT.newWindow)
    ]);
    if (!isTel) {
      a.target = "_blank";
      a.rel = "noopener noreferrer";
    }
    return a;
  }

  var storage = {
    get: function (area, key) {
      try {
        return window[area].getItem(key);
      } catch (e) {
        return null;
      }
    },
    set: function (area, key, value) {
      try {
        window[area].setItem(key, value);
      } catch (e) {
        // Storage full or blocked (private mode): the chat still works, it just won't persist.
      }
    }
  };

  function randomId() {
    var bytes = new Uint8Array(16);
    window.crypto.getRandomValues(bytes);
    return Array.prototype.map
      .call(bytes, function (b) {
        return (b < 16 ? "0" : "") + b.toString(16);
      })
      .join("");
  }

  function sessionId() {
    var id = storage.get("sessionStorage", SESSION_KEY);
    if (!id) {
      id = randomId();
      storage.set("sessionStorage", SESSION_KEY, id);
    }
    return id;
  }

  function asList(value) {
    return Array.isArray(value) ? value : [];
  }

  function str(value) {
    return typeof value === "string" ? value : "";
  }

  /** Keep only the fields the widget shows: a stored message is plain data. */
  function questionItems(value) {
    return asList(value)
      .filter(function (item) {
        return item && typeof item.question === "string" && item.question;
      })
      .map(function (item) {
        return { id: typeof item.id === "string" ? item.id : null, question: item.question };
      });
  }

  function linkItems(value) {
    return asList(value)
      .filter(function (item) {
        return item && typeof item.title === "string" && typeof item.url === "string";
      })
      .map(function (item) {
        return { title: item.title, url: item.url };
      });
  }

  function contextItem(value) {
    if (value && typeof value.faqId === "string" && value.faqId && value.left > 0) {
      return { faqId: value.faqId, left: Math.min(CONTEXT_TURNS, Math.floor(value.left)) };
    }
    return null;
  }

  /** The channels without repeats (same address or same name), so none shows twice. */
  function uniqueChannels(channels) {
    var seen = {};
    return linkItems(channels).filter(function (c) {
      var href = safeHref(c.url) || c.url;
      var keys = ["u:" + href, "t:" + c.title.replace(/\s+/g, "")];
      if (seen[keys[0]] || seen[keys[1]]) {
        return false;
      }
      seen[keys[0]] = seen[keys[1]] = true;
      return true;
    });
  }

  // ---- HTTP --------------------------------------------------------------

  function api(method, path, body, signal) {
    var options = { method: method, headers: { Accept: "application/json" }, signal: signal };
    if (body !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(body);
    }
    return window.fetch(endpoint + path, options).then(function (response) {
      return response
        .json()
        .catch(function () {
          return null;
        })
        .then(function (data) {
          if (response.ok && data) {
            return data;
          }
          var error = new Error("HTTP " + response.status);
          error.status = response.status;
          error.visitorMessage =
            data && data.error && typeof data.error.message === "string" ? data.error.message : "";
          throw error;
        });
    });
  }

  /** The message for a failed ask; ``retry`` is the request to send again. */
  function errorMessage(error, retry) {
    var message = { role: "bot", kind: "error", text: TEXT.server, retry: null };
    if (!error || !error.status) {
      // No answer at all: the service is down or unreachable. Never blame the visitor's network.
      message.text = TEXT.unreachable;
      message.retry = retry;
    } else if (error.status === 429) {
      message.text = error.visitorMessage || TEXT.rateLimited;
    } else if (error.status >= 500) {
      message.text = TEXT.server;
      message.retry = retry;
    } else {
      message.text = error.visitorMessage || TEXT.server;
    }
    return message;
  }

  function wait(ms) {
    return new Promise(function (resolve) {
      window.setTimeout(resolve, ms);
    });
  }

  // ---- state (survives navigation through sessionStorage) -----------------

  // context: the last answered FAQ and how many more questions carry it.
  var state = { open: false, messages: [], channels: [], context: null };

  function loadState() {
    var raw = storage.get("sessionStorage", STATE_KEY);
    if (!raw) {
      return;
    }
    try {
      var saved = JSON.parse(raw);
      if (saved && Array.isArray(saved.messages)) {
        state.open = saved.open === true;
        state.messages = saved.messages.filter(function (m) {
          return m && (m.role === "user" || m.role === "bot");
        });
        state.channels = linkItems(saved.channels);
        state.context = contextItem(saved.context);
      }
    } catch (e) {
      state = { open: false, messages: [], channels: [], context: null };
    }
  }

  function saveState() {
    if (state.messages.length > MAX_STORED_MESSAGES) {
      state.messages = state.messages.slice(-MAX_STORED_MESSAGES);
    }
    storage.set("sessionStorage", STATE_KEY, JSON.stringify(state));
  }

  // ---- DOM ---------------------------------------------------------------

  var host = h("aside", { id: "xiaocheng-widget", "aria-label": TEXT.dialog });
  var shadow = host.attachShadow({ mode: "open" });
  var mascotUrl = assetBase + "mascot.svg";

  var root = h("div", { className: "xc-root", hidden: true });
  var launcher = h(
    "button",
    {
      className: "xc-launcher",
      type: "button",
      "aria-expanded": "false",
      "aria-controls": "xc-panel",
      "aria-haspopup": "dialog"
    },
    [
      h("img", { className: "xc-launcher-img", src: mascotUrl, alt: "", width: 76, height: 76 }),
      h("span", { className: "xc-launcher-label", text: TEXT.launcher }),
      srOnly(TEXT.launcherHint)
    ]
  );
  var largeButton = h("button", {
    className: "xc-head-btn xc-large-btn",
    type: "button",
    "aria-pressed": "false",
    "aria-label": TEXT.largeLabel,
    text: TEXT.large
  });
  var closeButton = h("button", { className: "xc-head-btn xc-close", type: "button", "aria-label": TEXT.close }, [
    icon("close")
  ]);
  var log = h("div", {
    className: "xc-log",
    id: "xc-log",
    role: "log",
    "aria-live": "polite",
    "aria-label": TEXT.log,
    tabindex: "0"
  });
  var typing = h("div", { className: "xc-msg xc-bot xc-typing", hidden: true, "aria-hidden": "true" }, [
    h("img", { className: "xc-ava", src: mascotUrl, alt: "" }),
    h("div", { className: "xc-bubble" }, [
      h("span", { className: "xc-dots" }, [h("i"), h("i"), h("i")]),
      h("span", { className: "xc-typing-text", text: TEXT.typing })
    ])
  ]);
  // In short windows the footer's disclaimer moves here, to scroll with the conversation.
  var scroller = h("div", { className: "xc-scroll" }, [
    h("p", { className: "xc-foot xc-foot-inline", text: TEXT.disclaimer }),
    log,
    typing
  ]);
  var input = h("input", {
    className: "xc-input",
    id: "xc-input",
    type: "text",
    role: "combobox",
    "aria-autocomplete": "list",
    "aria-expanded": "false",
    "aria-controls": "xc-suggest",
    autocomplete: "off",
    enterkeyhint: "send",
    "aria-describedby": "xc-counter",
    placeholder: TEXT.placeholder
  });
  var counter = h("p", { className: "xc-counter", id: "xc-counter", hidden: true });
  var suggestList = h("ul", { className: "xc-suggest", id: "xc-suggest", role: "listbox", "aria-label": TEXT.suggestLabel, hidden: true });
  var sendButton = h("button", { className: "xc-send", type: "button" }, [icon("send"), h("span", { text: TEXT.send })]);
  var hint = h("p", { className: "xc-hint", role: "status" });
  var panel = h(
    "section",
    {
      className: "xc-panel",
      id: "xc-panel",
      role: "dialog",
      "aria-modal": "true",
      "aria-label": TEXT.dialog,
      hidden: true
    },
    [
      h("header", { className: "xc-head" }, [
        h("img", { className: "xc-head-ava", src: mascotUrl, alt: "" }),
        h("div", { className: "xc-titles" }, [
          h("h2", { className: "xc-title", text: TEXT.title }),
          h("p", { className: "xc-subtitle", text: TEXT.subtitle })
        ]),
        largeButton,
        closeButton
      ]),
      scroller,
      h("div", { className: "xc-compose" }, [
        h("div", { className: "xc-combo" }, [
          h("label", { className: "xc-sr", for: "xc-input", text: TEXT.inputLabel }),
          input,
          suggestList
        ]),
        sendButton
      ]),
      counter,
      hint,
      h("p", { className: "xc-foot xc-foot-end", text: TEXT.disclaimer })
    ]
  );
  root.appendChild(panel);
  root.appendChild(launcher);

  var stylesheet = h("link", { rel: "stylesheet", href: assetBase + "widget.css" });
  // Keep everything hidden until the stylesheet is in, so the portal never flashes unstyled markup.
  stylesheet.addEventListener("load", function () {
    root.hidden = false;
  });
  stylesheet.addEventListener("error", function () {
    root.hidden = false;
  });
  shadow.appendChild(stylesheet);
  shadow.appendChild(root);

  // ---- rendering messages --------------------------------------------------

  /** Question chips; a click asks that FAQ and names the reply it came from. */
  function chipList(items, label, message, extra) {
    if (!items.length) {
      return null;
    }
    var fromQueryId = message && message.queryId ? message.queryId : null;
    var chips = items.map(function (item) {
      return h("li", null, [
        h("button", {
          className: "xc-chip",
          type: "button",
          text: item.question,
          onclick: function () {
            ask(item.question, { faqId: item.id, fromQueryId: fromQueryId });
            focusInput();
          }
        })
      ]);
    });
    return h("div", { className: "xc-chips-block" }, [
      label ? h("p", { className: "xc-label", text: label }) : null,
      h("ul", { className: "xc-chips" }, extra ? chips.concat([h("li", null, [extra])]) : chips)
    ]);
  }

  /** The clarify's last choice: none of these fits. */
  function noneButton(message) {
    var button = h("button", {
      className: "xc-chip xc-none",
      type: "button",
      text: TEXT.noneOfThese,
      disabled: message.none === true,
      "aria-pressed": message.none === true ? "true" : "false"
    });
    button.addEventListener("click", function () {
      noneOfThese(message, button);
    });
    return button;
  }

  function channelList(channels, label) {
    var links = uniqueChannels(channels)
      .map(function (c) {
        var a = linkTo(c, "xc-channel");
        return a ? h("li", null, [a]) : null;
      })
      .filter(Boolean);
    if (!links.length) {
      return null;
    }
    return h("div", { className: "xc-channels" }, [
      h("p", { className: "xc-label", text: label }),
      h("ul", { className: "xc-channel-list" }, links)
    ]);
  }

  function feedbackRow(message) {
    if (!message.queryId) {
      return null;
    }
    var status = h("span", { className: "xc-thanks", role: "status" });
    var up = h("button", { className: "xc-fb", type: "button", "aria-pressed": "false" }, [icon("up"), h("span", { text: TEXT.helpful })]);
    var down = h("button", { className: "xc-fb", type: "button", "aria-pressed": "false" }, [icon("down"), h("span", { text: TEXT.unhelpful })]);

    function show(choice) {
      up.disabled = true;
      down.disabled = true;
      (choice === "up" ? up : down).setAttribute("aria-pressed", "true");
      status.textContent = choice === "up" ? TEXT.thanksUp : TEXT.thanksDown;
    }

    function send(choice) {
      up.disabled = true;
      down.disabled = true;
      api("POST", "/api/feedback", { query_id: message.queryId, helpful: choice === "up" })
        .then(function () {
          message.feedback = choice;
          saveState();
          show(choice);
        })
        .catch(function (error) {
          up.disabled = false;
          down.disabled = false;
          status.textContent = error && error.status ? error.visitorMessage || TEXT.feedbackFailed : TEXT.feedbackFailed;
        });
    }

    up.addEventListener("click", function () {
      send("up");
    });
    down.addEventListener("click", function () {
      send("down");
    });
    if (message.feedback === "up" || message.feedback === "down") {
      show(message.feedback);
    }
    return h("div", { className: "xc-feedback" }, [
      h("span", { className: "xc-fb-ask", text: TEXT.askHelpful }),
      h("span", { className: "xc-fb-buttons" }, [up, down]),
      status
    ]);
  }

  // ---- reading answers aloud (the browser's own speech synthesis) ----------

  var speech = window.speechSynthesis || null;
  var speaking = null;

  /** A Chinese voice of this browser, or null: without one there is no 朗读 button. */
  function chineseVoice() {
    if (!speech || typeof speech.getVoices !== "function" || typeof window.SpeechSynthesisUtterance !== "function") {
      return null;
    }
    var voices;
    try {
      voices = asList(speech.getVoices());
    } catch (e) {
      return null;
    }
    var zh = voices.filter(function (v) {
      return v && /^(zh|cmn)\b/i.test(str(v.lang).replace(/_/g, "-"));
    });
    var mainland = zh.filter(function (v) {
      return /^(zh-CN|zh-Hans|cmn)/i.test(str(v.lang).replace(/_/g, "-"));
    });
    return mainland[0] || zh[0] || null;
  }

  function showSpeaking(button, on) {
    button.setAttribute("aria-pressed", on ? "true" : "false");
    button.setAttribute("aria-label", on ? TEXT.stopLabel : TEXT.speakLabel);
    button.lastChild.textContent = on ? TEXT.stopSpeaking : TEXT.speak;
  }

  function stopSpeaking() {
    if (speaking) {
      showSpeaking(speaking, false);
      speaking = null;
    }
    if (speech) {
      speech.cancel();
    }
  }

  function speakButton(text) {
    var voice = chineseVoice();
    if (!voice || !text) {
      return null;
    }
    var button = h("button", { className: "xc-speak", type: "button", "aria-pressed": "false", "aria-label": TEXT.speakLabel }, [
      icon("speak"),
      h("span", { text: TEXT.speak })
    ]);
    button.addEventListener("click", function () {
      var again = speaking !== button;
      stopSpeaking();
      if (!again) {
        return;
      }
      var utterance = new window.SpeechSynthesisUtterance(text);
      utterance.lang = str(voice.lang) || "zh-CN";
      try {
        utterance.voice = voice;
      } catch (e) {
        // Only the lang is set: the browser picks its own voice for it.
      }
      utterance.rate = 0.9;
      utterance.onend = utterance.onerror = function () {
        if (speaking === button) {
          showSpeaking(button, false);
          speaking = null;
        }
      };
      speaking = button;
      showSpeaking(button, true);
      speech.speak(utterance);
    });
    return button;
  }

  function isSmalltalk(message) {
    return message.smalltalk === true;
  }

  function answerBody(message) {
    var faq = message.faq || {};
    var links = asList(faq.links)
      .map(function (item) {
        var a = linkTo(item, "xc-link");
        return a ? h("li", null, [a]) : null;
      })
      .filter(Boolean);
    var basis = asList(faq.basis).filter(function (b) {
      return typeof b === "string" && b;
    });
    if (isSmalltalk(message)) {
      // Conversation, not an answer: no heading, no helpful row, no basis.
      return [
        h("p", { className: "xc-text xc-answer", text: str(faq.answer) || message.text }),
        chipList(message.suggestions, TEXT.related, message)
      ];
    }
    return [
      message.text ? h("p", { className: "xc-lead", text: message.text }) : null,
      faq.question ? h("p", { className: "xc-faq-q", text: faq.question }) : null,
      h("p", { className: "xc-answer", text: str(faq.answer) }),
      speakButton([str(faq.question), str(faq.answer)].filter(Boolean).join("。")),
      links.length
        ? h("div", { className: "xc-links" }, [
            h("p", { className: "xc-label", text: TEXT.links }),
            h("ul", { className: "xc-link-list" }, links)
          ])
        : null,
      basis.length ? h("p", { className: "xc-basis", text: TEXT.basis + basis.join("；") }) : null,
      feedbackRow(message),
      chipList(message.suggestions, TEXT.related, message)
    ];
  }

  function retryButton(message) {
    if (!message.retry || !message.retry.body) {
      return null;
    }
    var q = str(message.retry.body.q);
    return h("div", { className: "xc-retry-row" }, [
      h("button", {
        className: "xc-retry",
        type: "button",
        text: TEXT.retry,
        "aria-label": TEXT.retryLabel.replace("{q}", q),
        onclick: function () {
          retry(message);
        }
      })
    ]);
  }

  function botBody(message) {
    switch (message.kind) {
      case "greeting":
        return [
          h("p", { className: "xc-text", text: message.text || TEXT.greeting }),
          chipList(message.suggestions, TEXT.hot, message),
          channelList(message.channels, TEXT.channels)
        ];
      case "answer":
        return answerBody(message);
      case "clarify":
        return [
          h("p", { className: "xc-text", text: message.text }),
          chipList(message.suggestions, null, message, noneButton(message))
        ];
      case "fallback":
        return [
          h("p", { className: "xc-text", text: message.text }),
          chipList(message.suggestions, TEXT.hints, message),
          channelList(message.channels, TEXT.channels)
        ];
      case "rephrase":
        return [h("p", { className: "xc-text", text: TEXT.rephrase }), channelList(state.channels, TEXT.channels)];
      default:
        return [
          h("p", { className: "xc-text xc-error", text: message.text || TEXT.server }),
          retryButton(message),
          channelList(state.channels, TEXT.channels)
        ];
    }
  }

  function renderMessage(message) {
    if (message.role === "user") {
      return h("div", { className: "xc-msg xc-user" }, [
        h("div", { className: "xc-bubble" }, [srOnly(TEXT.youSay), h("span", { text: str(message.text) })])
      ]);
    }
    var kind = "xc-msg xc-bot xc-kind-" + str(message.kind) + (isSmalltalk(message) ? " xc-smalltalk" : "");
    return h("div", { className: kind }, [
      h("img", { className: "xc-ava", src: mascotUrl, alt: "" }),
      h("div", { className: "xc-bubble" }, [srOnly(TEXT.botSays)].concat(botBody(message)))
    ]);
  }

  function reveal(el) {
    // Long answers are read from their start, under the question they answer;
    // short ones just scroll to the end.
    if (el && el.offsetHeight > scroller.clientHeight - 24) {
      var prev = el.previousElementSibling;
      var top = prev && prev.offsetHeight < scroller.clientHeight / 4 ? prev : el;
      scroller.scrollTop = top.offsetTop - 12;
    } else {
      scroller.scrollTop = scroller.scrollHeight;
    }
  }

  function addMessage(message) {
    state.messages.push(message);
    saveState();
    var el = renderMessage(message);
    log.appendChild(el);
    reveal(el);
    return el;
  }

  function renderAll() {
    log.textContent = "";
    state.messages.forEach(function (message) {
      log.appendChild(renderMessage(message));
    });
  }

  function replyMessage(reply) {
    var type = reply && reply.type;
    var faq = reply && reply.faq && typeof reply.faq === "object" ? reply.faq : null;
    // Smalltalk: a future "smalltalk": true or type "smalltalk", or today the bank's smalltalk category.
    var smalltalk =
      type === "smalltalk" || (reply && reply.smalltalk === true) || (faq !== null && faq.category === SMALLTALK_CATEGORY);
    if (type === "smalltalk") {
      type = "answer";
    }
    if (type !== "answer" && type !== "clarify" && type !== "fallback") {
      return { role: "bot", kind: "error", text: TEXT.server };
    }
    return {
      role: "bot",
      kind: type,
      smalltalk: smalltalk && type === "answer",
      text: str(reply.message),
      faq: faq && {
        id: str(faq.id),
        category: str(faq.category),
        question: str(faq.question),
        answer: str(faq.answer),
        basis: asList(faq.basis).filter(function (b) {
          return typeof b === "string";
        }),
        links: linkItems(faq.links)
      },
      suggestions: questionItems(reply.suggestions),
      channels: linkItems(reply.channels),
      queryId: reply.query_id === undefined ? null : reply.query_id,
      feedback: null
    };
  }

  // ---- asking --------------------------------------------------------------

  var busy = false;

  /** Ready the input for the next question, but on touch screens leave the
   *  on-screen keyboard down so the answer is not hidden behind it. */
  function focusInput() {
    if (window.matchMedia && window.matchMedia("(pointer: coarse)").matches) {
      input.blur();
    } else {
      input.focus();
    }
  }

  function setTyping(on) {
    typing.hidden = !on;
    panel.setAttribute("aria-busy", on ? "true" : "false");
    if (on) {
      scroller.scrollTop = scroller.scrollHeight;
    }
  }

  /** The question as it will be sent: spaces tidied, never cut. */
  function tidy(text) {
    return str(text).replace(/\s+/g, " ").trim();
  }

  /** Ask a question; ``options.faqId`` answers a clicked chip, ``options.fromQueryId``
   *  names the reply that chip came from. */
  function ask(question, options) {
    options = options || {};
    var q = tidy(question);
    if (!q) {
      hint.textContent = TEXT.empty;
      input.focus();
      return;
    }
    if (q.length > maxQuestionChars) {
      // Say so and keep the text: never cut the visitor's question silently.
      hint.textContent = TEXT.tooLong.replace("{max}", maxQuestionChars).replace("{n}", q.length - maxQuestionChars);
      input.focus();
      return;
    }
    if (busy) {
      return;
    }
    hint.textContent = "";
    closeSuggest();
    input.value = "";
    updateCounter();
    addMessage({ role: "user", text: q });
    var body = { q: q, session: sessionId() };
    if (options.faqId) {
      body.faq_id = options.faqId;
    }
    if (options.fromQueryId) {
      body.from_query_id = options.fromQueryId;
    }
    if (state.context) {
      body.context = { faq_id: state.context.faqId };
      state.context.left -= 1;
      if (state.context.left <= 0) {
        state.context = null;
      }
    }
    send(body);
  }

  /** Post one question and show the reply; a failure offers to send the same body again. */
  function send(body) {
    busy = true;
    setTyping(true);
    var started = Date.now();
    api("POST", "/api/ask", body)
      .then(
        function (reply) {
          var message = replyMessage(reply);
          noteContext(message);
          return message;
        },
        function (error) {
          return errorMessage(error, { body: body });
        }
      )
      .then(function (message) {
        return wait(Math.max(0, TYPING_MIN_MS - (Date.now() - started))).then(function () {
          setTyping(false);
          busy = false;
          addMessage(message);
        });
      });
  }

  /** A real answer becomes the context of the next turns; a clarify or fallback
   *  the visitor has not resolved ends it. Smalltalk just uses up a turn. */
  function noteContext(message) {
    if (message.kind === "answer" && !message.smalltalk && message.faq && message.faq.id) {
      state.context = { faqId: message.faq.id, left: CONTEXT_TURNS };
    } else if (message.kind === "clarify" || message.kind === "fallback") {
      state.context = null;
    }
  }

  function retry(message) {
    if (busy || !message.retry) {
      return;
    }
    var at = state.messages.indexOf(message);
    if (at >= 0) {
      state.messages.splice(at, 1);
    }
    saveState();
    renderAll();
    send(message.retry.body);
    focusInput();
  }

  /** "都不是" under a clarify: tell the service, then help the visitor rephrase. */
  function noneOfThese(message, button) {
    if (message.none === true || busy) {
      return;
    }
    message.none = true;
    button.disabled = true;
    button.setAttribute("aria-pressed", "true");
    state.context = null;
    if (message.queryId) {
      api("POST", "/api/feedback", { query_id: message.queryId, helpful: false, reason: "none_of_these" }).catch(
        function () {
          // The advice below helps the visitor whether or not the signal was recorded.
        }
      );
    }
    addMessage({ role: "user", text: TEXT.noneOfTheseSaid });
    addMessage({ role: "bot", kind: "rephrase" });
    focusInput();
  }

  function updateCounter() {
    var length = tidy(input.value).length;
    var left = maxQuestionChars - length;
    if (left > COUNTER_MARGIN) {
      counter.hidden = true;
      counter.textContent = "";
      input.removeAttribute("aria-invalid");
      return;
    }
    counter.hidden = false;
    counter.classList.toggle("xc-over", left < 0);
    counter.textContent =
      (left < 0 ? TEXT.counterOver.replace("{n}", -left) : TEXT.counterLeft.replace("{n}", left)) +
      "（" + length + "/" + maxQuestionChars + "）";
    if (left < 0) {
      input.setAttribute("aria-invalid", "true");
    } else {
      input.removeAttribute("aria-invalid");
    }
  }

  var greetingLoading = false;

  function greet() {
    if (state.messages.length || greetingLoading) {
      return;
    }
    greetingLoading = true;
    setTyping(true);
    api("GET", "/api/hot")
      .then(
        function (data) {
          state.channels = uniqueChannels(data.channels);
          var limit = data.limits && data.limits.max_question_chars;
          if (typeof limit === "number" && limit > 0) {
            maxQuestionChars = Math.floor(limit);
            updateCounter();
          }
          return {
            role: "bot",
            kind: "greeting",
            text: str(data.greeting) || TEXT.greeting,
            suggestions: questionItems(data.questions),
            channels: state.channels,
            queryId: typeof data.query_id === "string" ? data.query_id : null
          };
        },
        function () {
          return { role: "bot", kind: "greeting", text: TEXT.greeting, suggestions: [], channels: [] };
        }
      )
      .then(function (message) {
        greetingLoading = false;
        setTyping(false);
        // Someone may already have asked while the greeting loaded: keep it first.
        state.messages.unshift(message);
        saveState();
        renderAll();
        reveal(log.lastElementChild);
      });
  }

  // ---- type-ahead (WAI-ARIA combobox with a listbox popup) ---------------

  var suggestTimer = 0;
  var suggestAbort = null;
  var suggestItems = [];
  var activeIndex = -1;

  function closeSuggest() {
    window.clearTimeout(suggestTimer);
    if (suggestAbort) {
      suggestAbort.abort();
      suggestAbort = null;
    }
    suggestItems = [];
    activeIndex = -1;
    suggestList.hidden = true;
    suggestList.textContent = "";
    input.setAttribute("aria-expanded", "false");
    input.removeAttribute("aria-activedescendant");
  }

  /** The question text with the typed part marked, built from text nodes. */
  function highlighted(question, typed) {
    var at = typed ? question.toLowerCase().indexOf(typed.toLowerCase()) : -1;
    if (at < 0) {
      return [question];
    }
    return [
      question.slice(0, at),
      h("mark", { text: question.slice(at, at + typed.length) }),
      question.slice(at + typed.length)
    ];
  }

  function showSuggest(items, typed) {
    closeSuggest();
    suggestItems = items.slice(0, MAX_SUGGESTIONS);
    if (!suggestItems.length) {
      return;
    }
    suggestItems.forEach(function (item, i) {
      var option = h(
        "li",
        { className: "xc-option", id: "xc-opt-" + i, role: "option", "aria-selected": "false" },
        highlighted(item.question, typed)
      );
      // mousedown would blur the input and close the list before the click lands.
      option.addEventListener("mousedown", function (event) {
        event.preventDefault();
      });
      option.addEventListener("click", function () {
        ask(item.question, { faqId: item.id });
      });
      suggestList.appendChild(option);
    });
    suggestList.hidden = false;
    input.setAttribute("aria-expanded", "true");
  }

  function moveActive(step) {
    if (!suggestItems.length) {
      return;
    }
    var options = suggestList.children;
    if (activeIndex >= 0) {
      options[activeIndex].setAttribute("aria-selected", "false");
    }
    activeIndex = (activeIndex + step + suggestItems.length + 1) % (suggestItems.length + 1);
    if (activeIndex === suggestItems.length) {
      // One step past either end returns to the visitor's own text.
      activeIndex = -1;
      input.removeAttribute("aria-activedescendant");
      return;
    }
    var option = options[activeIndex];
    option.setAttribute("aria-selected", "true");
    input.setAttribute("aria-activedescendant", option.id);
    option.scrollIntoView({ block: "nearest" });
  }

  function fetchSuggest(typed) {
    if (suggestAbort) {
      suggestAbort.abort();
    }
    var controller = typeof AbortController === "function" ? new AbortController() : null;
    suggestAbort = controller;
    api("GET", "/api/suggest?q=" + encodeURIComponent(typed), undefined, controller && controller.signal)
      .then(function (data) {
        if (input.value.trim() === typed && document.activeElement === host && shadow.activeElement === input) {
          showSuggest(questionItems(data.suggestions), typed);
        }
      })
      .catch(function () {
        // Type-ahead is a convenience: a failed or aborted lookup just shows nothing.
      });
  }

  function clearActive() {
    if (activeIndex >= 0 && suggestList.children[activeIndex]) {
      suggestList.children[activeIndex].setAttribute("aria-selected", "false");
    }
    activeIndex = -1;
    input.removeAttribute("aria-activedescendant");
  }

  input.addEventListener("input", function () {
    hint.textContent = "";
    updateCounter();
    // What the visitor types now is what Enter sends, not a stale highlighted option.
    clearActive();
    window.clearTimeout(suggestTimer);
    var typed = input.value.trim();
    if (!typed || typed.length > maxQuestionChars) {
      closeSuggest();
      return;
    }
    suggestTimer = window.setTimeout(function () {
      fetchSuggest(typed);
    }, SUGGEST_DELAY_MS);
  });

  input.addEventListener("keydown", function (event) {
    // Enter that confirms an IME composition (pinyin input) must not send.
    if (event.isComposing || event.keyCode === 229) {
      return;
    }
    var open = !suggestList.hidden;
    if (event.key === "ArrowDown" && open) {
      event.preventDefault();
      moveActive(1);
    } else if (event.key === "ArrowUp" && open) {
      event.preventDefault();
      moveActive(-1);
    } else if (event.key === "Enter") {
      event.preventDefault();
      if (open && activeIndex >= 0) {
        var item = suggestItems[activeIndex];
        ask(item.question, { faqId: item.id });
      } else {
        ask(input.value);
      }
    } else if (event.key === "Escape" && open) {
      event.preventDefault();
      event.stopPropagation();
      closeSuggest();
    }
  });

  input.addEventListener("blur", function () {
    window.setTimeout(function () {
      if (shadow.activeElement !== input) {
        closeSuggest();
      }
    }, 0);
  });

  sendButton.addEventListener("click", function () {
    ask(input.value);
    focusInput();
  });

  // ---- open, close, large text ---------------------------------------------

  function openPanel(moveFocus) {
    state.open = true;
    saveState();
    panel.hidden = false;
    root.classList.add("xc-is-open");
    launcher.setAttribute("aria-expanded", "true");
    greet();
    scroller.scrollTop = scroller.scrollHeight;
    if (moveFocus) {
      input.focus();
    }
  }

  function closePanel(returnFocus) {
    stopSpeaking();
    state.open = false;
    saveState();
    closeSuggest();
    panel.hidden = true;
    root.classList.remove("xc-is-open");
    launcher.setAttribute("aria-expanded", "false");
    if (returnFocus) {
      launcher.focus();
    }
  }

  launcher.addEventListener("click", function () {
    if (panel.hidden) {
      openPanel(true);
    } else {
      closePanel(true);
    }
  });
  closeButton.addEventListener("click", function () {
    closePanel(true);
  });
  /** What Tab reaches inside the open panel, in order. */
  function focusables() {
    var all = panel.querySelectorAll("button, input, a[href], [tabindex]:not([tabindex='-1'])");
    return Array.prototype.filter.call(all, function (el) {
      return !el.disabled && el.getClientRects().length > 0;
    });
  }

  panel.addEventListener("keydown", function (event) {
    if (event.key === "Escape" && !event.defaultPrevented) {
      event.preventDefault();
      closePanel(true);
    } else if (event.key === "Tab") {
      // A dialog keeps the focus (WAI-ARIA dialog pattern): past either end, wrap around.
      var items = focusables();
      if (!items.length) {
        return;
      }
      var at = items.indexOf(shadow.activeElement);
      if (event.shiftKey && at <= 0) {
        event.preventDefault();
        items[items.length - 1].focus();
      } else if (!event.shiftKey && (at < 0 || at === items.length - 1)) {
        event.preventDefault();
        items[0].focus();
      }
    }
  });

  function setLarge(on) {
    root.classList.toggle("xc-large", on);
    largeButton.setAttribute("aria-pressed", on ? "true" : "false");
  }

  largeButton.addEventListener("click", function () {
    var on = largeButton.getAttribute("aria-pressed") !== "true";
    setLarge(on);
    storage.set("localStorage", LARGE_KEY, on ? "1" : "0");
  });

  // ---- start ---------------------------------------------------------------

  function start() {
    loadState();
    setLarge(storage.get("localStorage", LARGE_KEY) === "1");
    renderAll();
    document.body.appendChild(host);
    if (speech && typeof speech.addEventListener === "function") {
      // Voices often arrive after load: show the 朗读 buttons once a Chinese one is there.
      var hadVoice = chineseVoice() !== null;
      speech.addEventListener("voiceschanged", function () {
        if ((chineseVoice() !== null) === hadVoice) {
          return;
        }
        hadVoice = !hadVoice;
        var top = scroller.scrollTop;
        renderAll();
        scroller.scrollTop = top;
      });
    }
    if (state.open) {
      // Reopen after navigation without stealing focus from the new page.
      openPanel(false);
    }
  }

  window.XiaochengWidget = {
    open: function () {
      openPanel(true);
    },
    close: function () {
      closePanel(false);
    }
  };

  if (document.body) {
    start();
  } else {
    document.addEventListener("DOMContentLoaded", start);
  }
})();
