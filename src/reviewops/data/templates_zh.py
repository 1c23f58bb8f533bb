"""Chinese review-level phrase tables: how shoppers on Chinese e-commerce sites open, close and title a review.

Written the way such reviews read (short comma-spliced clauses about 物流, 包装, 客服 and
性价比, 好评/差评 and 回购 at the end, 一般般/还行吧 for the lukewarm ones), not translated from
the English tables. Lists are indexed by star tone 1..5 (index 0 unused). Clauses carry no final
punctuation: :mod:`reviewops.data.generate` joins them with "，" and ends sentences itself.
The per-aspect Chinese sentences are next to the English ones in :mod:`reviewops.data.templates`.
"""

from __future__ import annotations

OPENERS_ZH = [
    (),
    ("差评", "千万别买", "太失望了", "真的无语了", "冲着好评买的，结果大失所望", "第一次给差评", "后悔买了", "垃圾"),
    ("有点失望", "没有想象中好", "不太满意", "和预期差距有点大", "冲着销量买的，有点失望", "一般，不太推荐"),
    ("一般般吧", "还行吧", "中规中矩", "怎么说呢，一般", "有好有坏吧", "说不上好也说不上差", "凑合用吧"),
    ("东西收到了，整体还不错", "挺好的", "还可以，比预期好一点", "总体满意", "用了几天才来评价，还不错", "不错不错"),
    (
        "非常满意",
        "宝贝收到了，非常喜欢",
        "第二次购买了，一如既往的好",
        "东西收到了，超出预期",
        "太喜欢了",
        "回购好多次了",
        "给家里人买的，都说好",
        "买对了",
    ),
]
CLOSERS_ZH = [
    (),
    ("差评", "不推荐", "千万别买", "已经申请退货了", "再也不会买了", "大家别上当", "给一星都多了"),
    ("不太推荐", "不会回购了", "大家慎重", "有点后悔", "不值这个价", "勉强能用吧"),
    ("凑合用吧", "就这样吧", "看个人需求吧", "这个价格也就这样了", "要求不高的话可以买", "给三星吧"),
    ("总体来说还是推荐的", "还会再买", "给个好评吧", "四星吧，小瑕疵可以接受", "值得入手", "整体满意"),
    ("五星好评", "好评", "会回购的", "推荐购买", "强烈推荐", "下次还来", "已经推荐给朋友了", "值得购买"),
]
# Whole reviews of a few characters (at least four, so validation's minimum length holds).
ONE_LINERS_ZH = [
    (),
    ("差评，质量太差", "垃圾，别买", "千万别买", "太差了，已退货", "质量很差，不推荐", "买了就后悔", "差评差评差评"),
    ("没有想象中好", "不太好用，有点失望", "质量一般，不值这个价", "不推荐，一般般", "有点失望，不会回购"),
    (
        "还行吧，一般",
        "一般般吧",
        "一般，凑合用",
        "中规中矩吧",
        "还可以，就是有点贵",
        "一般般，没什么惊喜",
        "马马虎虎吧",
    ),
    (
        "还不错，挺满意的",
        "挺好的，就是物流有点慢",
        "不错，值得购买",
        "东西还可以，性价比挺高",
        "整体不错，小问题可以接受",
    ),
    ("很好，好评", "质量很好，物流很快", "非常满意，会回购", "东西不错，好评", "和描述一样，满意", "超级喜欢，推荐"),
]
# Short tails a one-liner can end with, per tone.
SHORT_TAILS_ZH = [
    (),
    ("差评", "别买", "退货了", "不推荐"),
    ("不推荐", "不会回购", "有点失望"),
    ("一般般", "还行吧", "凑合用"),
    ("还不错", "挺满意", "值得买"),
    ("好评", "五星好评", "会回购", "推荐"),
]
TITLES_ZH = [
    (),
    ("非常失望", "千万别买", "千万别买这个{n}", "纯属浪费钱", "已经退货了", "差评", "垃圾质量"),
    ("有点失望", "不太满意", "和预期差很多", "不会回购了", "没有想象中好", "不值这个价"),
    ("一般般吧", "中规中矩", "有好有坏", "还行，没有惊喜", "凑合能用", "马马虎虎"),
    ("整体不错", "挺满意的", "还不错，小瑕疵", "值得购买", "不错的{n}", "性价比还可以"),
    ("非常满意", "五星好评", "强烈推荐", "超出预期，太喜欢了", "买到就是赚到", "很满意的{n}", "会回购的"),
]
# Said in a positive voice, meant the other way (only in 1-2 star reviews).
SARCASM_ZH = (
    "呵呵，这质量也好意思卖这个价",
    "质量真是“好”，用两天就坏了",
    "快递真“快”啊，走了半个月",
    "这么多好评是刷的吧",
    "真是物美价廉啊，便宜没好货",
    "谢谢商家让我交了智商税",
    "客服真“热情”，问三句回一句",
)
# Neutral context: who it is for, how long it has been used.
CONTEXT_ZH = (
    "给老公买的",
    "帮朋友买的",
    "第二次买了",
    "双十一囤的",
    "用了一个星期才来评价",
    "之前在实体店看过",
    "看了很多评价才下单的",
    "给孩子买的",
    "买来送人的",
    "收到货了",
    "618活动时候买的",
)
UPDATE_ZH = ("追评：", "用了一个月来追评，", "追加评价：")
# Generic frames around an aspect subject: (good, bad, okay).
FRAMES_ZH = (
    ("{s}很好", "{s}没得说", "{s}挺不错的", "{s}真的很满意", "{s}比想象中好", "{s}完全没问题"),
    ("{s}太差了", "{s}不怎么样", "{s}没有想象中好", "{s}真的很差劲", "{s}让人失望", "{s}不行"),
    ("{s}还行吧", "{s}一般般", "{s}中规中矩", "{s}还可以，没什么惊喜", "{s}凑合", "{s}马马虎虎"),
)
# Contrast connectives, as in the English tables.
BUT_ZH = ("但是", "不过", "可是")  # "就是" (only thing is) is added before a bad point only
DOWNSIDE_ZH = ("唯一不足的是", "美中不足的是", "就是", "唯一的缺点是")
UPSIDE_ZH = ("还好", "好在", "唯一的优点是", "不过")
# Casual register (a minority of reviews): internet spellings and asides.
CASUAL_ZH = {"非常": "灰常", "没有": "木有", "怎么": "肿么", "可以": "阔以", "什么": "神马", "喜欢": "稀饭"}
ASIDES_ZH = [
    (),
    ("无语", "服了", "气死了"),
    ("唉", "emmm"),
    ("emmm", "哈哈"),
    ("哈哈", "嘿嘿"),
    ("哈哈哈", "yyds", "爱了爱了"),
]
