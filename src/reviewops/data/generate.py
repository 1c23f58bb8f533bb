"""Seeded synthetic product reviews: the embedded default data set and the drift scenarios.

Reviews are composed from hand-written English and Chinese sentence templates about
category-specific aspects (battery, taste, fit, scent...), with the sentiment of every
sentence and of the title following the star rating. A fixed share of rows carries the mess
real exports have (HTML, PII, duplicates, empty bodies, bad ratings/timestamps, other
languages) so validation and preprocessing have something to catch.

Only ``random.Random(seed)`` drives the output, and the CSV is written with the ``csv``
module, so the same arguments give the same bytes on every machine and pandas version.
"""

from __future__ import annotations

import csv
import datetime as dt
import os
import random
from bisect import bisect
from dataclasses import dataclass
from itertools import accumulate
from pathlib import Path

import pandas as pd

from reviewops.errors import ReviewOpsError

COLUMNS = ["review_id", "product_id", "category", "text", "summary", "rating", "timestamp", "language"]

SCENARIOS: dict[str, str] = {
    "base": "six established categories, ~80% English / 20% Chinese, ratings skewed positive "
    "like a real store (5 stars 55%, 1 star 11%)",
    "new_category": "a category absent from base (pet_supplies) makes up ~70% of the batch, with "
    "its own products, aspects and vocabulary",
    "language_sentiment_shift": "at least 65% Chinese reviews and a strong shift to negative ratings "
    "(~62% one or two stars), mostly about late or lost deliveries",
}

# Share of rows of each mess kind; counts are round(rate * rows), disjoint rows, placed by the seed.
MESS_RATES: dict[str, float] = {
    "html": 0.03,
    "pii": 0.03,
    "exact_duplicate": 0.02,
    "near_duplicate": 0.02,
    "empty_text": 0.01,
    "rating_out_of_range": 0.01,
    "bad_timestamp": 0.01,
    "other_language": 0.01,
    "duplicate_review_id": 0.005,
    "long_text": 0.001,
}

_BASE_RATINGS = {5: 0.55, 4: 0.18, 3: 0.09, 2: 0.07, 1: 0.11}
_SHIFT_RATINGS = {5: 0.18, 4: 0.10, 3: 0.10, 2: 0.20, 1: 0.42}
_START = dt.datetime(2023, 1, 1, tzinfo=dt.UTC)
_DAYS = 730
# Sentence counts 1..6.
_SENTENCE_WEIGHTS = [0.12, 0.22, 0.24, 0.20, 0.13, 0.09]


@dataclass(frozen=True)
class _Aspect:
    """Sentences and titles about one aspect of a product, per language and polarity."""

    label_en: str
    label_zh: str
    en_pos: tuple[str, ...]
    en_neg: tuple[str, ...]
    zh_pos: tuple[str, ...]
    zh_neg: tuple[str, ...]
    title_en_pos: tuple[str, ...]
    title_en_neg: tuple[str, ...]
    title_zh_pos: tuple[str, ...]
    title_zh_neg: tuple[str, ...]


@dataclass(frozen=True)
class _Category:
    code: str
    n_products: int
    nouns_en: tuple[str, ...]
    nouns_zh: tuple[str, ...]
    aspects: tuple[_Aspect, ...]


def _a(label_en, label_zh, en_pos, en_neg, zh_pos, zh_neg, t_en_pos, t_en_neg, t_zh_pos, t_zh_neg):
    return _Aspect(
        label_en,
        label_zh,
        tuple(en_pos),
        tuple(en_neg),
        tuple(zh_pos),
        tuple(zh_neg),
        tuple(t_en_pos),
        tuple(t_en_neg),
        tuple(t_zh_pos),
        tuple(t_zh_neg),
    )


# ---------------------------------------------------------------------------------------------
# Vocabulary. "{n}" is replaced by the product noun. Chinese sentences carry no final
# punctuation: the composer adds "。" or "！".
# ---------------------------------------------------------------------------------------------

_PRICE = _a(
    "price",
    "价格",
    [
        "For the price, this {n} is a steal.",
        "Great value for money.",
        "Cheaper than the big-name brands and just as good.",
        "I got it on sale and it was worth every penny.",
    ],
    [
        "Way overpriced for what you get.",
        "Not worth the money at all.",
        "You can find a better {n} for half the price.",
        "The price is far too high for this quality.",
    ],
    [
        "这个价格能买到这样的{n}，性价比很高",
        "价格实惠，比实体店便宜不少",
        "趁活动买的，很划算",
        "价格不贵，质量却一点不差",
    ],
    ["价格偏贵，不值这个钱", "这个价位完全可以买到更好的", "性价比太低了，有点后悔", "比别家贵了一大截"],
    ["Great value for money", "Worth every penny", "Cheap and cheerful"],
    ["Way overpriced", "Not worth the money", "Too expensive for this"],
    ["性价比很高", "物美价廉", "价格很实惠"],
    ["性价比太低", "价格虚高", "不值这个价"],
)
_DELIVERY = _a(
    "delivery",
    "物流",
    [
        "Arrived two days early.",
        "Shipping was fast and the tracking was accurate.",
        "Delivery was quick, even during the holidays.",
        "The courier was friendly and brought it to my door.",
    ],
    [
        "Delivery took almost three weeks.",
        "The package was lost and I had to wait for a replacement.",
        "It arrived a week late with no updates from the courier.",
        "The courier left it in the rain and never rang the bell.",
        "Tracking said delivered, but nothing showed up for five days.",
    ],
    ["物流很快，隔天就到了", "快递小哥服务很好，直接送货上门", "发货速度很快，下单第二天就收到了"],
    [
        "物流太慢了，等了快三个星期",
        "快递丢件了，催了好几次才补发",
        "说好三天到货，结果拖了一个多星期",
        "快递员直接扔在门口，也不打个电话",
        "显示已签收，可五天后才拿到货",
    ],
    ["Fast delivery", "Arrived early", "Quick shipping, great product"],
    ["Delivery was a disaster", "Arrived weeks late", "Package lost in transit", "Terrible shipping experience"],
    ["物流超快", "发货很及时", "送货速度快"],
    ["物流太慢了", "快递丢件了", "等了三个星期才到", "快递服务太差"],
)
_PACKAGING = _a(
    "packaging",
    "包装",
    [
        "Packaging was neat and secure.",
        "Everything came well protected in the box.",
        "Nicely packaged, it would make a good gift.",
    ],
    [
        "The box was crushed when it arrived.",
        "Packaging was damaged and the seal was broken.",
        "It came in a torn bag with no protection at all.",
    ],
    ["包装很用心，没有任何破损", "包装严实，送人也很体面", "外包装很精致，拆开很有仪式感"],
    ["收到的时候盒子都压扁了", "包装破损，封口都开了", "外包装很简陋，一点保护都没有"],
    ["Well packaged", "Arrived in perfect condition"],
    ["Arrived damaged", "Crushed box, broken seal"],
    ["包装很用心", "包装完好无损"],
    ["包装破损严重", "收到时盒子压扁了"],
)
_GENERIC_ASPECTS = (_PRICE, _DELIVERY, _PACKAGING)

_CATEGORIES: dict[str, _Category] = {
    "electronics": _Category(
        "ELE",
        72,
        (
            "wireless headset",
            "bluetooth speaker",
            "power bank",
            "wireless mouse",
            "smartwatch",
            "wireless keyboard",
            "fitness tracker",
            "e-reader",
        ),
        ("无线耳机", "蓝牙音箱", "充电宝", "无线鼠标", "智能手表", "无线键盘", "运动手环", "电子阅读器"),
        (
            _a(
                "battery life",
                "续航",
                [
                    "The battery easily lasts a whole week.",
                    "Battery life is fantastic.",
                    "Charges quickly and holds the charge for days.",
                ],
                [
                    "The battery dies after a couple of hours.",
                    "Battery life is nowhere near what was advertised.",
                    "It stopped holding a charge after a month.",
                ],
                ["续航很给力，充一次电能用一个星期", "电池很耐用，充电也快", "续航比宣传的还要长"],
                ["续航太差，用两个小时就没电了", "电池根本达不到宣传的时长", "用了一个月就充不进电了"],
                ["Amazing battery life", "Battery lasts all week"],
                ["Battery dies in hours", "Terrible battery life"],
                ["续航非常给力", "电池很耐用"],
                ["续航太差了", "一个月就充不进电"],
            ),
            _a(
                "connection",
                "连接",
                [
                    "Pairing with my phone took seconds.",
                    "The Bluetooth connection is stable, no dropouts.",
                    "Setup was painless and it just works.",
                ],
                [
                    "It keeps disconnecting from my phone.",
                    "Pairing is a nightmare and the app crashes constantly.",
                    "The signal drops as soon as I leave the room.",
                ],
                ["和手机配对很快，几秒就连上了", "蓝牙连接很稳定，从来没断过", "设置很简单，拿到手就能用"],
                ["老是和手机断开连接", "配对特别麻烦，App还经常闪退", "走出房间信号就断了"],
                ["Pairs instantly, stable connection", "Easy setup"],
                ["Keeps disconnecting", "Pairing is a nightmare"],
                ["连接稳定不掉线", "配对超级简单"],
                ["老是断开连接", "配对太麻烦了"],
            ),
            _a(
                "build quality",
                "做工",
                [
                    "The {n} feels solid and well made.",
                    "Build quality is excellent for the price.",
                    "The buttons have a nice, firm click.",
                ],
                [
                    "The {n} feels cheap and flimsy.",
                    "The plastic cracked after one drop.",
                    "One of the buttons stopped working within a week.",
                ],
                ["做工很精细，拿在手里很有质感", "这个{n}的做工比想象中好", "按键手感很好，很扎实"],
                ["做工粗糙，塑料感很强", "掉了一次外壳就裂了", "不到一个星期有个按键就失灵了"],
                ["Solid and well made", "Great build quality"],
                ["Cheap and flimsy", "Broke within a week"],
                ["做工很精细", "质感很好"],
                ["做工太粗糙", "用了一周就坏了"],
            ),
        ),
    ),
    "grocery": _Category(
        "GRO",
        80,
        (
            "coffee",
            "green tea",
            "olive oil",
            "granola",
            "dark chocolate",
            "honey",
            "hot sauce",
            "protein bar",
            "pasta",
            "trail mix",
        ),
        ("咖啡", "绿茶", "橄榄油", "燕麦片", "黑巧克力", "蜂蜜", "辣酱", "蛋白棒", "意面", "混合坚果"),
        (
            _a(
                "taste",
                "味道",
                [
                    "The taste is rich and not too sweet.",
                    "Tastes fresh and delicious.",
                    "My whole family loves the flavor.",
                ],
                [
                    "It tastes stale and bland.",
                    "Way too salty, I couldn't finish it.",
                    "The flavor is artificial and leaves a weird aftertaste.",
                ],
                ["味道很好，甜度刚刚好", "口感很新鲜，全家都爱吃", "味道很正宗，和在国外吃的一样"],
                ["味道很淡，吃起来像放久了", "太咸了，实在吃不下去", "有股怪怪的香精味"],
                ["Delicious and fresh", "Tastes amazing", "Great flavor"],
                ["Tastes stale", "Weird aftertaste", "Way too salty"],
                ["味道超级好", "口感很新鲜", "全家都爱吃"],
                ["味道很奇怪", "一股香精味", "太咸了吃不下"],
            ),
            _a(
                "freshness",
                "新鲜度",
                [
                    "The best-before date is months away and everything was fresh.",
                    "Arrived fresh, well within the expiry date.",
                ],
                [
                    "It was only a few days from its expiry date when it arrived.",
                    "Some of it was already moldy.",
                    "The bag was open and the contents had gone soft.",
                ],
                ["生产日期很新，保质期还有很久", "收到的时候很新鲜"],
                ["收到时离过期只剩几天了", "打开发现有的已经发霉了", "袋子漏气，东西都受潮了"],
                ["Fresh with a long shelf life", "Arrived fresh"],
                ["Close to expiry date", "Arrived moldy"],
                ["日期很新鲜", "保质期很长"],
                ["快过期了", "收到就发霉了"],
            ),
            _a(
                "portion",
                "分量",
                ["Generous portion for the price.", "The pack is bigger than I expected."],
                ["The bag is half air, far less than expected.", "The actual weight is less than on the label."],
                ["分量很足，够吃很久", "量很大，比想象中多"],
                ["分量太少，半袋都是空气", "实际重量比标的少"],
                ["Generous portions", "Big pack, lasts long"],
                ["Half the bag is air", "Tiny portion"],
                ["分量很足", "量大实惠"],
                ["半袋都是空气", "分量太少了"],
            ),
        ),
    ),
    "apparel": _Category(
        "APP",
        60,
        ("t-shirt", "hoodie", "jacket", "sweater", "dress", "down coat", "pair of jeans", "pair of sneakers"),
        ("T恤", "卫衣", "夹克", "毛衣", "连衣裙", "羽绒服", "牛仔裤", "运动鞋"),
        (
            _a(
                "fit",
                "尺码",
                [
                    "Fits true to size.",
                    "The fit is perfect, I ordered my usual size.",
                    "The cut is flattering and comfortable.",
                ],
                [
                    "Runs two sizes small, I had to return it.",
                    "The sizing chart is way off.",
                    "The sleeves are ridiculously long.",
                ],
                ["尺码很标准，按平时的码数买正合适", "版型很好，穿上很显瘦", "剪裁很合身，穿着很舒服"],
                ["尺码偏小两个码，只能退了", "尺码表完全不准", "袖子长得离谱"],
                ["Perfect fit", "True to size", "Fits like a glove"],
                ["Runs very small", "Sizing is way off"],
                ["尺码很标准", "版型超好看"],
                ["尺码偏小", "尺码表不准"],
            ),
            _a(
                "fabric",
                "面料",
                [
                    "The fabric is soft and breathable.",
                    "The material feels premium and comfortable.",
                    "Still looks new after many washes.",
                ],
                [
                    "The fabric is scratchy and thin.",
                    "It shrank badly after the first wash.",
                    "Pilled after wearing it twice.",
                ],
                ["面料很柔软，透气性好", "料子摸起来很舒服", "洗了很多次还跟新的一样"],
                ["面料很薄，还扎皮肤", "洗了一次就缩水严重", "穿了两次就起球了"],
                ["Soft, comfortable fabric", "Great material"],
                ["Shrank after one wash", "Thin, scratchy fabric"],
                ["面料柔软舒服", "料子很好"],
                ["洗一次就缩水", "面料太差了"],
            ),
            _a(
                "color",
                "颜色",
                ["The color is exactly like the pictures.", "Colors stayed bright after many washes."],
                ["The color looks nothing like the photos.", "The color faded after two washes."],
                ["颜色和图片一模一样", "洗了好几次也不掉色"],
                ["颜色和图片差别很大", "洗了两次就掉色了"],
                ["Color exactly as pictured", "Lovely color"],
                ["Color nothing like photos", "Faded after two washes"],
                ["颜色很正", "颜色和图片一样"],
                ["色差很大", "严重掉色"],
            ),
        ),
    ),
    "home_kitchen": _Category(
        "HOM",
        64,
        (
            "frying pan",
            "kettle",
            "knife set",
            "blender",
            "storage box",
            "cutting board",
            "vacuum cleaner",
            "coffee maker",
        ),
        ("平底锅", "电水壶", "刀具套装", "榨汁机", "收纳盒", "砧板", "吸尘器", "咖啡机"),
        (
            _a(
                "durability",
                "耐用度",
                ["Still works like new after months of daily use.", "Sturdy and built to last."],
                [
                    "It broke within a month.",
                    "The handle came loose after a few weeks.",
                    "Started rusting after a couple of washes.",
                ],
                ["每天都在用，几个月了还跟新的一样", "很结实，感觉能用很多年"],
                ["不到一个月就坏了", "用了几个星期把手就松了", "洗了几次就开始生锈"],
                ["Built to last", "Sturdy and reliable"],
                ["Broke within a month", "Handle came loose"],
                ["结实耐用", "用了很久都没坏"],
                ["一个月就坏了", "把手松了"],
            ),
            _a(
                "cleaning",
                "清洗",
                ["Very easy to clean, just a quick rinse.", "Dishwasher safe and cleans up in seconds."],
                ["A pain to clean, food gets stuck everywhere.", "Impossible to clean the corners."],
                ["很好清洗，冲一下就干净了", "可以放洗碗机，清洁很方便"],
                ["特别难清洗，缝隙里全是残渣", "角落根本洗不干净"],
                ["Easy to clean", "Cleans up in seconds"],
                ["Impossible to clean", "A pain to clean"],
                ["清洗很方便", "一冲就干净"],
                ["太难清洗了", "缝隙洗不干净"],
            ),
            _a(
                "ease of use",
                "使用体验",
                [
                    "Works exactly as described.",
                    "It makes my daily routine so much easier.",
                    "Simple to use, no manual needed.",
                ],
                [
                    "It does not work as described.",
                    "Noisy and awkward to use.",
                    "The instructions are useless and it never worked properly.",
                ],
                ["使用效果很好，和描述一致", "用起来很顺手，省了不少事", "操作很简单，不用看说明书"],
                ["实际效果和描述差很多", "用起来很不顺手，噪音还大", "说明书写得一塌糊涂，一直没用明白"],
                ["Works exactly as described", "So easy to use"],
                ["Does not work as described", "Noisy and awkward"],
                ["好用又省事", "操作很简单"],
                ["很不好用", "和描述不符"],
            ),
        ),
    ),
    "beauty": _Category(
        "BEA",
        48,
        ("face cream", "shampoo", "lipstick", "sunscreen", "perfume", "body lotion", "serum", "face mask"),
        ("面霜", "洗发水", "口红", "防晒霜", "香水", "身体乳", "精华液", "面膜"),
        (
            _a(
                "scent",
                "香味",
                ["The scent is light and lovely.", "Smells amazing and not overpowering."],
                ["The smell is way too strong and chemical.", "It smells nothing like described."],
                ["香味很淡雅，很好闻", "味道很清新，一点都不刺鼻"],
                ["味道太冲了，有股化学味", "气味和描述完全不一样"],
                ["Smells lovely", "Beautiful light scent"],
                ["Chemical smell", "Smells awful"],
                ["香味很好闻", "味道很清新"],
                ["味道太刺鼻", "一股化学味"],
            ),
            _a(
                "skin feel",
                "肤感",
                [
                    "My skin feels soft and hydrated.",
                    "Absorbs quickly without feeling greasy.",
                    "Gentle enough for my sensitive skin.",
                ],
                [
                    "It broke me out after two days.",
                    "Feels greasy and sticky on the skin.",
                    "It stings every time I put it on.",
                ],
                ["用完皮肤很水润", "吸收很快，一点都不油腻", "敏感肌用着也很温和"],
                ["用了两天脸上就开始过敏长痘", "很油腻，涂完黏黏的", "每次涂上都有刺痛感"],
                ["Skin feels amazing", "Absorbs quickly, not greasy"],
                ["Broke me out", "Greasy and sticky"],
                ["用完皮肤很水润", "吸收快不油腻"],
                ["用了就过敏", "太油腻了"],
            ),
            _a(
                "authenticity",
                "正品",
                ["Definitely genuine, the batch code checks out.", "Identical to the one I buy in the store."],
                [
                    "I suspect it's a counterfeit, the packaging looks different.",
                    "The batch code doesn't exist on the brand's website.",
                ],
                ["是正品，防伪码查过了", "和专柜买的一模一样"],
                ["怀疑是假货，包装和专柜的不一样", "防伪码根本查不到"],
                ["Genuine product", "Authentic and fresh"],
                ["Looks like a fake", "Possibly counterfeit"],
                ["正品放心", "和专柜一样"],
                ["疑似假货", "防伪码查不到"],
            ),
        ),
    ),
    "books": _Category(
        "BOO",
        40,
        ("novel", "cookbook", "biography", "picture book", "history book", "self-help book"),
        ("小说", "菜谱", "传记", "绘本", "历史书", "励志书"),
        (
            _a(
                "content",
                "内容",
                [
                    "The story kept me up all night.",
                    "Well researched and full of insight.",
                    "My kids ask me to read it every evening.",
                ],
                [
                    "The plot drags and the ending is a letdown.",
                    "Shallow content, nothing you can't find online.",
                    "Half of the book repeats the first chapter.",
                ],
                ["内容很精彩，一口气读完了", "干货很多，受益匪浅", "孩子每天晚上都要我读给他听"],
                ["情节拖沓，结局很让人失望", "内容很空洞，网上都能搜到", "后半本都在重复第一章的内容"],
                ["Could not put it down", "Full of insight", "A wonderful read"],
                ["Boring and shallow", "The ending ruined it"],
                ["内容很精彩", "干货满满", "一口气读完"],
                ["内容空洞", "情节拖沓"],
            ),
            _a(
                "writing",
                "文笔",
                ["Beautifully written.", "The writing is clear and engaging.", "The translation reads naturally."],
                ["The writing is clunky and repetitive.", "Poorly edited, with typos on every page."],
                ["文笔很好，读起来很流畅", "翻译很到位，读着很舒服"],
                ["文笔很啰嗦，翻来覆去说同样的话", "错别字太多，编辑太不用心"],
                ["Beautifully written", "Clear, engaging writing"],
                ["Clunky, repetitive writing", "Typos on every page"],
                ["文笔优美", "翻译很到位"],
                ["文笔啰嗦", "错别字太多"],
            ),
            _a(
                "print quality",
                "印刷",
                ["The print and paper quality are excellent.", "A lovely hardcover edition."],
                ["Pages were misprinted and some were missing.", "The paper is so thin the text shows through."],
                ["纸张很好，印刷清晰", "装帧精美，很适合收藏"],
                ["印刷模糊，还缺了几页", "纸张很薄，背面的字都透过来了"],
                ["Lovely edition", "Great print quality"],
                ["Misprinted pages", "Cheap paper, poor print"],
                ["印刷清晰", "装帧精美"],
                ["印刷模糊缺页", "纸张太薄"],
            ),
        ),
    ),
    # Absent from base: the new_category scenario makes it dominate a batch.
    "pet_supplies": _Category(
        "PET",
        56,
        ("dog food", "cat litter", "chew toy", "cat tree", "dog leash", "pet bed", "cat food", "pet carrier"),
        ("狗粮", "猫砂", "磨牙玩具", "猫爬架", "牵引绳", "宠物窝", "猫粮", "宠物航空箱"),
        (
            _a(
                "pet appeal",
                "接受度",
                [
                    "My dog absolutely loves it.",
                    "The cats fight over it every evening.",
                    "My picky cat took to it right away.",
                ],
                [
                    "My dog sniffed it once and walked away.",
                    "My cat refuses to go near it.",
                    "Both of my dogs ignore it completely.",
                ],
                ["我家狗狗超级喜欢", "两只猫每天都抢着用", "我家挑剔的猫主子一下就接受了"],
                ["狗狗闻了一下就走开了", "猫咪根本不愿意靠近", "两只狗都完全不理它"],
                ["My dog loves it", "Cat approved", "Even my picky cat likes it"],
                ["My dog won't touch it", "My cat hates it"],
                ["狗狗超级喜欢", "猫主子很满意", "毛孩子很爱"],
                ["狗狗完全不理", "猫咪不买账"],
            ),
            _a(
                "durability",
                "耐用度",
                [
                    "Survived months of heavy chewing.",
                    "Tough enough for my large breed.",
                    "The stitching is strong and it washes well.",
                ],
                [
                    "Destroyed in ten minutes by my puppy.",
                    "The stitching came apart in a day.",
                    "The clip snapped on our second walk.",
                ],
                ["我家拆家狗咬了几个月都没坏", "很结实，大型犬也能用", "做工扎实，洗了也不变形"],
                ["小狗十分钟就咬烂了", "一天就开线了", "第二次遛狗扣子就断了"],
                ["Survives heavy chewers", "Tough and durable"],
                ["Destroyed in minutes", "Not chew proof"],
                ["非常耐咬", "结实耐用"],
                ["一下就咬坏了", "太不结实了"],
            ),
            _a(
                "pet health",
                "安全健康",
                [
                    "No tummy troubles, and his coat looks shinier.",
                    "The ingredients look safe and natural.",
                    "Low dust and no smell, which my vet approved of.",
                ],
                [
                    "My cat got sick after eating it.",
                    "Strong chemical smell, I don't trust it around my pets.",
                    "Gave my dog an upset stomach for days.",
                ],
                ["吃了之后毛色都变亮了，肠胃也没问题", "成分很安全，用着放心", "粉尘很少也没有异味"],
                ["猫吃了以后就拉肚子", "有很重的化学味，不敢给宠物用", "狗狗吃了肠胃不舒服好几天"],
                ["Healthy and safe", "Shinier coat already"],
                ["Made my cat sick", "Worried about safety"],
                ["健康又放心", "毛色都变亮了"],
                ["吃了拉肚子", "不敢再用了"],
            ),
        ),
    ),
}

_BASE_CATEGORY_WEIGHTS = {
    "electronics": 0.24,
    "grocery": 0.20,
    "apparel": 0.16,
    "home_kitchen": 0.16,
    "beauty": 0.12,
    "books": 0.12,
}

# Per star rating (index 1..5; index 0 unused).
_OPENERS_EN = [
    (),
    ("Do not buy this {n}.", "Worst purchase I've made this year.", "Completely useless.", "I want my money back."),
    ("Not what I hoped for.", "I wanted to like this {n}, but no.", "Disappointed with this purchase."),
    (
        "It's okay, nothing special.",
        "Mixed feelings about this {n}.",
        "Some things I like, some I don't.",
        "An average {n} that does the basics.",
    ),
    ("Pretty good {n} overall.", "Happy with this purchase.", "Does what it says.", "A solid choice for everyday use."),
    (
        "Absolutely love this {n}!",
        "This is my third one and I'm still impressed.",
        "Exactly what I was looking for.",
        "I was skeptical at first but this {n} won me over.",
    ),
]
_OPENERS_ZH = [
    (),
    ("千万别买这个{n}", "今年买过最差的东西", "完全没法用", "强烈要求退款"),
    ("和我期待的不太一样", "本来挺想喜欢这个{n}的，可惜", "这次购物有点失望"),
    ("一般般，没有什么特别的", "对这个{n}感觉很复杂", "有优点也有缺点", "中规中矩吧"),
    ("整体来说挺不错的", "对这次购物还算满意", "和描述基本一致", "日常用完全够了"),
    ("非常喜欢这个{n}", "已经是第三次回购了，依然很满意", "正是我想要的", "一开始还有点担心，用了以后完全被圈粉"),
]
_CLOSERS_EN = [
    (),
    ("Returning it.", "Save your money.", "Never again."),
    ("Probably won't buy again.", "I'd look elsewhere.", "Two stars because it sort of works."),
    ("Might work for you if you're not picky.", "Not sure I'd buy it again.", "It's fine for the price."),
    ("Would recommend.", "I'd buy it again.", "Four stars because nothing is perfect."),
    ("Would definitely buy again.", "Highly recommend!", "Already ordered another one as a gift."),
]
_CLOSERS_ZH = [
    (),
    ("已经申请退货了", "大家别浪费钱了", "再也不会买了"),
    ("应该不会再买了", "建议大家看看别家", "勉强能用吧"),
    ("要求不高的话可以考虑", "不确定还会不会再买", "这个价格也就这样了"),
    ("推荐购买", "下次还会再买", "给四星，小瑕疵可以接受"),
    ("会一直回购的", "强烈推荐给大家", "已经推荐给朋友了"),
]
_TITLES_EN = [
    (),
    ("Waste of money", "Do not buy", "Terrible {n}", "Completely useless", "Returned it immediately"),
    ("Not impressed", "Disappointing {n}", "Expected more", "Would not buy again"),
    ("It's okay", "Average at best", "Mixed feelings", "Decent but not great", "Some pros, some cons"),
    ("Very good overall", "Solid {n}", "Pretty happy with it", "Good, with minor flaws", "Does the job well"),
    (
        "Absolutely love it",
        "Five stars",
        "Best purchase this year",
        "Highly recommend this {n}",
        "Exceeded my expectations",
        "Perfect in every way",
    ),
]
_TITLES_ZH = [
    (),
    ("非常失望", "千万别买", "千万别买这个{n}", "纯属浪费钱", "已经退货了"),
    ("有点失望", "不太满意", "和预期差很多", "不会回购了"),
    ("一般般吧", "中规中矩", "有好有坏", "还行，没有惊喜"),
    ("整体不错", "挺满意的", "还不错，小瑕疵", "值得购买", "不错的{n}"),
    ("非常满意", "五星好评", "强烈推荐", "超出预期，太喜欢了", "买到就是赚到", "很满意的{n}"),
]

_OTHER_LANGUAGE = {
    "fr": (
        (
            "Produit de très bonne qualité, je le recommande.",
            "Livraison rapide, rien à redire.",
            "Très bon rapport qualité-prix.",
        ),
        (
            "Très déçu, le produit ne fonctionne pas.",
            "Arrivé en retard et en mauvais état.",
            "Qualité médiocre, je le renvoie.",
        ),
        ("Très satisfait", "Je recommande"),
        ("Très déçu", "À éviter"),
    ),
    "es": (
        ("Muy buen producto, lo recomiendo.", "Llegó rápido y bien empaquetado."),
        ("Llegó tarde y en mal estado.", "No funciona, quiero mi dinero."),
        ("Muy bueno", "Lo recomiendo"),
        ("Muy malo", "No lo compren"),
    ),
}
_FIRST_NAMES = ("john", "mary", "li.wei", "anna", "zhang.min", "david", "sarah", "wang.fang", "tom", "emma")


@dataclass(frozen=True)
class _ScenarioSpec:
    category_weights: dict[str, float]
    rating_weights: dict[int, float]
    min_zh_share: float = 0.0
    negative_delivery_share: float = 0.0  # share of negative reviews whose main aspect is delivery


_SPECS: dict[str, _ScenarioSpec] = {
    "base": _ScenarioSpec(_BASE_CATEGORY_WEIGHTS, _BASE_RATINGS),
    "new_category": _ScenarioSpec(
        {"pet_supplies": 0.70, **{k: v * 0.30 for k, v in _BASE_CATEGORY_WEIGHTS.items()}}, _BASE_RATINGS
    ),
    "language_sentiment_shift": _ScenarioSpec(
        _BASE_CATEGORY_WEIGHTS, _SHIFT_RATINGS, min_zh_share=0.65, negative_delivery_share=0.75
    ),
}


def _cum(weights: list[float]) -> tuple[list[float], float]:
    cum = list(accumulate(weights))
    return cum, cum[-1]


def _pick(rng: random.Random, cum: list[float], total: float) -> int:
    return bisect(cum, rng.random() * total)


def _lower_first(sentence: str) -> str:
    """Lower-case a sentence start so it can follow a connective ("But the ...")."""
    first = sentence.split(" ", 1)[0]
    if first in {"I", "I'm", "I've", "I'd", "I'll"} or (len(first) > 1 and first[1].isupper()):
        return sentence
    return sentence[0].lower() + sentence[1:]


class _Composer:
    """Builds one review body and title per call; all randomness comes from ``rng``."""

    def __init__(self, rng: random.Random, spec: _ScenarioSpec):
        self.rng = rng
        self.spec = spec
        self.sent_cum, self.sent_total = _cum(_SENTENCE_WEIGHTS)

    def compose(self, cat: _Category, noun: str, rating: int, zh: bool) -> tuple[str, str]:
        rng = self.rng
        rand = rng.random
        choice = rng.choice
        cat_aspects = cat.aspects
        aspects = cat_aspects + _GENERIC_ASPECTS
        polarity = 1 if rating >= 4 else (-1 if rating <= 2 else 0)

        if polarity < 0 and self.spec.negative_delivery_share and rand() < self.spec.negative_delivery_share:
            main = _DELIVERY
        elif rand() < 0.7:
            main = choice(cat_aspects)
        else:
            main = choice(_GENERIC_ASPECTS)

        n = _pick(rng, self.sent_cum, self.sent_total) + 1
        has_opener = n >= 3 or (n == 2 and rand() < 0.4)
        has_closer = n >= 3 and rand() < 0.5
        k = n - has_opener - has_closer
        if polarity == 0 and k < 2:  # a mixed review needs a good and a bad point
            k = 2
        k = min(k, len(aspects))
        others = rng.sample([a for a in aspects if a is not main], k - 1) if k > 1 else []

        # Each entry: (aspect, polarity, connective kind) -> rendered below per language.
        parts: list[tuple[_Aspect, int, str]] = [(main, 1 if polarity >= 0 else -1, "")]
        for i, asp in enumerate(others):
            if polarity == 0:
                if i == 0:
                    parts.append((asp, -1, "but"))
                else:
                    parts.append((asp, 1 if rand() < 0.5 else -1, ""))
            elif rating == 4 and i == len(others) - 1 and rand() < 0.35:
                parts.append((asp, -1, "downside"))
            elif rating == 2 and i == len(others) - 1 and rand() < 0.3:
                parts.append((asp, 1, "fair"))
            else:
                parts.append((asp, polarity, ""))

        if zh:
            body = self._render_zh(parts, rating, noun, has_opener, has_closer)
        else:
            body = self._render_en(parts, rating, noun, has_opener, has_closer)
        title = self._title(main, others[0] if polarity == 0 and others else None, polarity, rating, zh)
        return body, title.replace("{n}", noun)

    def _render_en(self, parts, rating, noun, has_opener, has_closer) -> str:
        choice = self.rng.choice
        out = [choice(_OPENERS_EN[rating])] if has_opener else []
        for asp, pol, conn in parts:
            s = choice(asp.en_pos if pol > 0 else asp.en_neg)
            if conn == "but":
                s = choice(("But ", "However, ", "That said, ")) + _lower_first(s)
            elif conn == "downside":
                s = "The only downside: " + _lower_first(s)
            elif conn == "fair":
                s = "To be fair, " + _lower_first(s)
            out.append(s)
        if has_closer:
            out.append(choice(_CLOSERS_EN[rating]))
        return " ".join(out).replace("{n}", noun)

    def _render_zh(self, parts, rating, noun, has_opener, has_closer) -> str:
        choice = self.rng.choice
        end = "！" if rating in (1, 5) and self.rng.random() < 0.4 else "。"
        out = [choice(_OPENERS_ZH[rating]) + end] if has_opener else []
        for asp, pol, conn in parts:
            s = choice(asp.zh_pos if pol > 0 else asp.zh_neg)
            if conn == "but":
                s = choice(("但是", "不过", "可惜")) + s
            elif conn == "downside":
                s = "美中不足的是" + s
            elif conn == "fair":
                s = "还好" + s
            out.append(s + ("。" if conn else end))
        if has_closer:
            out.append(choice(_CLOSERS_ZH[rating]) + end)
        return "".join(out).replace("{n}", noun)

    def _title(self, main: _Aspect, con: _Aspect | None, polarity: int, rating: int, zh: bool) -> str:
        rand = self.rng.random
        choice = self.rng.choice
        if polarity == 0:
            if con is not None and rand() < 0.5:
                if zh:
                    return f"{main.label_zh}不错，{con.label_zh}一般"
                return f"Good {main.label_en}, poor {con.label_en}"
            return choice(_TITLES_ZH[3] if zh else _TITLES_EN[3])
        if rand() < 0.55:
            if zh:
                return choice(main.title_zh_pos if polarity > 0 else main.title_zh_neg)
            return choice(main.title_en_pos if polarity > 0 else main.title_en_neg)
        return choice(_TITLES_ZH[rating] if zh else _TITLES_EN[rating])


def _check_args(rows: int, scenario: str, zh_share: float) -> _ScenarioSpec:
    if scenario not in _SPECS:
        raise ReviewOpsError(f"unknown scenario {scenario!r}; valid scenarios: {', '.join(SCENARIOS)}")
    if rows < 1:
        raise ReviewOpsError(f"rows must be at least 1, got {rows}")
    if not 0.0 <= zh_share <= 1.0:
        raise ReviewOpsError(f"zh_share must be between 0 and 1, got {zh_share}")
    return _SPECS[scenario]


def _mess_counts(rows: int) -> dict[str, int]:
    counts = {kind: round(rate * rows) for kind, rate in MESS_RATES.items()}
    if rows >= 100:  # every kind shows up at least once in a batch worth validating
        counts = {kind: max(1, c) for kind, c in counts.items()}
    return counts


def _generate_columns(rows: int, seed: int, scenario: str, zh_share: float) -> dict[str, list]:
    spec = _check_args(rows, scenario, zh_share)
    rng = random.Random(seed)
    rand = rng.random
    zh_share = max(zh_share, spec.min_zh_share)

    cat_names = list(spec.category_weights)
    cat_cum, cat_total = _cum([spec.category_weights[c] for c in cat_names])
    rating_values = list(spec.rating_weights)
    rating_cum, rating_total = _cum([spec.rating_weights[r] for r in rating_values])
    # Product popularity is long-tailed and independent of the seed, so ids mean the same product
    # (same noun) in every batch.
    products = {}
    for name in cat_names:
        cat = _CATEGORIES[name]
        cum, total = _cum([1.0 / k**0.8 for k in range(1, cat.n_products + 1)])
        products[name] = (cat, cum, total)
    days = [(_START + dt.timedelta(days=d)).strftime("%Y-%m-%d") for d in range(_DAYS)]
    composer = _Composer(rng, spec)

    review_id = [f"R-{i:08d}" for i in range(1, rows + 1)]
    product_id, category, text, summary, rating, timestamp, language = [], [], [], [], [], [], []
    for _ in range(rows):
        name = cat_names[_pick(rng, cat_cum, cat_total)]
        cat, cum, total = products[name]
        k = _pick(rng, cum, total) + 1
        zh = rand() < zh_share
        nouns = cat.nouns_zh if zh else cat.nouns_en
        stars = rating_values[_pick(rng, rating_cum, rating_total)]
        body, title = composer.compose(cat, nouns[k % len(nouns)], stars, zh)
        secs = int(rand() * _DAYS * 86400)
        d, s = divmod(secs, 86400)
        h, s = divmod(s, 3600)
        m, s = divmod(s, 60)
        product_id.append(f"P-{cat.code}-{k:04d}")
        category.append(name)
        text.append(body)
        summary.append(title)
        rating.append(stars)
        timestamp.append(f"{days[d]}T{h:02d}:{m:02d}:{s:02d}Z")
        language.append("zh" if zh else "en")

    cols = {
        "review_id": review_id,
        "product_id": product_id,
        "category": category,
        "text": text,
        "summary": summary,
        "rating": rating,
        "timestamp": timestamp,
        "language": language,
    }
    _add_mess(rng, cols, rows)
    return cols


def _add_mess(rng: random.Random, cols: dict[str, list], rows: int) -> None:
    """Overwrite a fixed, seed-placed set of disjoint rows with one kind of mess each."""
    counts = _mess_counts(rows)
    positions = rng.sample(range(rows), sum(counts.values()))
    kind_of: dict[int, str] = {}
    start = 0
    for kind, c in counts.items():
        for pos in positions[start : start + c]:
            kind_of[pos] = kind
        start += c

    def clean_row() -> int:
        while True:
            j = rng.randrange(rows)
            if j not in kind_of:
                return j

    text, summary, lang = cols["text"], cols["summary"], cols["language"]
    for i in sorted(kind_of):
        kind = kind_of[i]
        zh = lang[i] == "zh"
        if kind == "html":
            text[i] = _add_html(rng, text[i], summary[i], cols["product_id"][i], zh)
        elif kind == "pii":
            text[i] = _add_pii(rng, text[i], zh)
        elif kind in ("exact_duplicate", "near_duplicate"):
            j = clean_row()
            for col in ("product_id", "category", "summary", "rating", "language"):
                cols[col][i] = cols[col][j]
            text[i] = text[j] if kind == "exact_duplicate" else _near_duplicate(rng, text[j])
        elif kind == "empty_text":
            text[i] = rng.choice(("", " ", "   ", "\n", "\t "))
        elif kind == "rating_out_of_range":
            cols["rating"][i] = rng.choice((0, 6, -1, 10))
        elif kind == "bad_timestamp":
            cols["timestamp"][i] = rng.choice(("not a date", "unknown", "2023-13-45"))
        elif kind == "other_language":
            code = rng.choice(tuple(_OTHER_LANGUAGE))
            pos, neg, t_pos, t_neg = _OTHER_LANGUAGE[code]
            good = cols["rating"][i] >= 3
            text[i] = rng.choice(pos if good else neg)
            summary[i] = rng.choice(t_pos if good else t_neg)
            lang[i] = code
        elif kind == "duplicate_review_id":
            cols["review_id"][i] = cols["review_id"][clean_row()]
        elif kind == "long_text":
            reps = 20_000 // len(text[i]) + 2 + rng.randrange(5)  # always > 20,000 chars
            text[i] = "\n\n".join([text[i]] * reps)


def _add_html(rng: random.Random, body: str, title: str, pid: str, zh: bool) -> str:
    variant = rng.randrange(4)
    if variant == 0:
        return (body.replace("。", "。<br />") if zh else body.replace(". ", ".<br /><br />")) + "<br />"
    if variant == 1:
        return ("<b>追评：</b>" if zh else "<b>Update:</b> ") + body
    if variant == 2:
        tail = (
            f"总结一下：&quot;{title}&quot; &amp; 不多说了"
            if zh
            else f" In short: &quot;{title}&quot; &amp; that's all."
        )
        return body + tail
    link = "商品链接" if zh else "product page"
    return body + f' <a href="https://www.example.com/dp/{pid}">{link}</a>'


def _add_pii(rng: random.Random, body: str, zh: bool) -> str:
    variant = rng.randrange(3)
    if variant == 0:
        email = f"{rng.choice(_FIRST_NAMES)}{rng.randrange(100)}@example.com"
        return body + (f"有问题可以发邮件到{email}" if zh else f" Email me at {email} with any questions.")
    if variant == 1:
        if zh:
            return body + f"卖家电话1{rng.choice('3578')}{rng.randrange(10**9):09d}"
        phone = f"+1 555-{rng.randrange(100, 1000)}-{rng.randrange(10000):04d}"
        return body + f" Call the seller at {phone}, they were helpful."
    url = f"https://photos.example.com/u/{rng.randrange(10**6)}"
    return body + (f"实拍图在这里：{url}" if zh else f" Photos here: {url}")


def _near_duplicate(rng: random.Random, body: str) -> str:
    """The same review with other case, whitespace or punctuation (never byte-identical)."""
    variant = rng.randrange(5)
    if variant == 0:
        out = body.lower() if body != body.lower() else body.upper()
    elif variant == 1:
        out = "  " + body.replace(" ", "  ").replace("。", "。 ") + " \n"
    elif variant == 2:
        out = body.rstrip(".。!！") + "!!!"
    elif variant == 3:
        out = body.replace("，", ",").replace("。", ".").replace(", ", ",")
    else:
        out = body.rstrip(".。!！")
    return out if out != body else body + "  "


def generate_reviews(rows: int, seed: int, scenario: str = "base", zh_share: float = 0.2) -> pd.DataFrame:
    """Generate a deterministic batch of synthetic reviews.

    Args:
        rows: number of rows (messy rows included).
        seed: seed of the only random source, ``random.Random(seed)``.
        scenario: one of :data:`SCENARIOS`.
        zh_share: share of Chinese reviews (the ``language_sentiment_shift`` scenario raises it
            to at least 0.65).

    Returns:
        A DataFrame with the columns of :data:`COLUMNS`; ``rating`` is an integer column.

    Raises:
        ReviewOpsError: unknown scenario, ``rows < 1`` or ``zh_share`` outside [0, 1].
    """
    return pd.DataFrame(_generate_columns(rows, seed, scenario, zh_share), columns=COLUMNS)


def write_generated(out_dir: Path, rows: int, seed: int, scenario: str = "base", zh_share: float = 0.2) -> Path:
    """Generate reviews and write them to ``out_dir/reviews_<scenario>.csv``.

    The file is written with the ``csv`` module (UTF-8, ``\\n`` line ends, minimal quoting), not
    pandas, so identical arguments give identical bytes whatever the pandas version.

    Returns:
        The path of the written CSV file.
    """
    cols = _generate_columns(rows, seed, scenario, zh_share)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"reviews_{scenario}.csv"
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
        writer.writerow(COLUMNS)
        writer.writerows(zip(*(cols[c] for c in COLUMNS), strict=True))
    os.replace(tmp, path)  # readers never see a half-written file
    return path
