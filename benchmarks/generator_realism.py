"""How realistic the generated default data set is, by a cheap sentiment proxy and a title check.

What it measures (no transformer, a few seconds on one core):

1. A proxy sentiment model, TF-IDF + logistic regression, is trained on the generated default
   data set (``generate_reviews(rows, seed)``, base scenario, the rows ``make run`` trains on:
   mess dropped, HTML stripped, labels from stars: 1-2 negative, 3 neutral, 4-5 positive). One
   model per language: word 1-2-grams for English, character 1-3-grams for Chinese.
2. It is scored on
   (a) held-out generated rows (another seed): macro-F1 per language, and the share of held-out
       texts that occur verbatim in the training rows (templates that repeat are memorised);
   (b) real reviews it never saw: ``../shared/data/amazon_fine_food_1k.csv`` (English, stars ->
       3 classes, macro-F1) and ``../shared/data/chnsenticorp_htl.csv`` (Chinese hotel reviews,
       binary: the higher of P(positive) and P(negative) decides; accuracy and macro-F1).
   A generator whose held-out score is near 1.0 while real scores stay low is too easy: it
   teaches a model patterns real reviews do not have.
3. Title polarity: a small polarity lexicon with negation (``not worth it``, ``不推荐``,
   ``没有想象中好``) reads every title; the figure is the share of negative reviews (1-2 stars)
   whose title it calls positive (an upbeat title on a negative review), per language, and the
   same share on the real Fine Food titles for calibration.

    python benchmarks/generator_realism.py                     # default data set (3000 rows), seeds 42-44
    python benchmarks/generator_realism.py --repeats 1 --rows 6000 --json /tmp/realism.json

The summary block gives mean, min and max over ``--repeats`` seed pairs (training seed 42, 43, 44
against held-out seed 7, 8, 9 by default): one 3,000-row data set has only ~600 Chinese rows, so
a single seed pair moves by a few points.

Without the shared files the real-data figures are skipped with a message.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
FINE_FOOD = DATA / "amazon_fine_food_1k.csv"
CHNSENTI = DATA / "chnsenticorp_htl.csv"


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


# A deliberately small polarity lexicon: enough to tell "Battery lasts forever" from "Died in two days".
EN_POS = frozenset(
    _words(
        "good great love loved loves excellent amazing awesome perfect best delicious tasty yummy recommend "
        "recommended happy pleased nice fantastic wonderful favorite favourite fresh worth solid superb "
        "comfortable soft impressed satisfied reliable sturdy gorgeous beautiful fast quick easy works exceeded"
    )
)
EN_NEG = frozenset(
    _words(
        "bad terrible awful worst waste disappointed disappointing disappointment broke broken poor stale "
        "flimsy horrible useless returned returning refund avoid late damaged crushed leaked leaking dead "
        "died overpriced bland fake moldy junk garbage defective failed fails meh gross rancid nasty "
        "mediocre rip-off ripoff scam sick wrong missing cracked faded fades shrank regret annoying slow refused"
    )
)
EN_NEGATORS = frozenset(_words("not no never don't didn't isn't wasn't won't doesn't aren't nothing hardly barely nor"))
ZH_POS = _words(
    "不错 满意 推荐 喜欢 好评 回购 值得 划算 实惠 给力 超值 惊喜 完美 舒服 新鲜 好吃 好用 好看 好闻 "
    "漂亮 很快 挺快 超快 性价比高 物美价廉 点赞 赞 棒 爱了 放心 耐用 结实 清晰 方便 正品 好"
)
ZH_NEG = _words(
    "差评 失望 别买 退货 退款 垃圾 后悔 上当 假货 难用 难吃 难闻 不值 太贵 偏贵 坑 骗 破损 压扁 "
    "坏了 坏 慢 差 烂 糟糕 过期 发霉 掉色 起球 缩水 过敏 异味 敷衍 智商税 劝退 踩雷 翻车"
)
ZH_NEGATORS = ("没有", "不是", "不", "没", "别", "无")
_ZH_PHRASES = sorted([(w, 1) for w in ZH_POS] + [(w, -1) for w in ZH_NEG], key=lambda p: -len(p[0]))
_EN_TOKEN = re.compile(r"[a-z]+(?:[-'][a-z]+)*")


def en_polarity(text: str) -> int:
    """+1, -1 or 0: the sign of positive minus negative words, a negator flipping the next 3 words."""
    score, flip_left = 0, 0
    for tok in _EN_TOKEN.findall(text.lower()):
        if tok in EN_NEGATORS:
            flip_left = 3
            continue
        word = 1 if tok in EN_POS else (-1 if tok in EN_NEG else 0)
        score += -word if flip_left else word
        flip_left = max(0, flip_left - 1)
    return int(np.sign(score))


def zh_polarity(text: str) -> int:
    """+1, -1 or 0: longest-match phrases (不错 before 不), a negator flipping the next phrase within 4 chars."""
    score, i, flip_until = 0, 0, -1
    while i < len(text):
        hit = next(((w, p) for w, p in _ZH_PHRASES if text.startswith(w, i)), None)
        if hit is not None:
            score += -hit[1] if i <= flip_until else hit[1]
            i += len(hit[0])
            continue
        neg = next((n for n in ZH_NEGATORS if text.startswith(n, i)), None)
        if neg is not None:
            flip_until = i + len(neg) + 4
            i += len(neg)
            continue
        i += 1
    return int(np.sign(score))


def polarity(text: str, language: str) -> int:
    return zh_polarity(text) if language == "zh" else en_polarity(text)


def generated(rows: int, seed: int, zh_share: float) -> pd.DataFrame:
    """The generated rows a training run would see: mess dropped, HTML stripped, labels from stars."""
    from reviewops.data.clean import clean_text
    from reviewops.data.generate import generate_reviews
    from reviewops.schema import rating_to_label

    df = generate_reviews(rows, seed, "base", zh_share)
    df = df[df["rating"].between(1, 5) & df["language"].isin(["en", "zh"])].copy()
    df["text"] = df["text"].map(lambda t: clean_text(t, mask=False))
    df = df[(df["text"].str.len() > 0) & (df["text"].str.len() < 20_000)].drop_duplicates("text")
    df["label"] = df["rating"].map(rating_to_label)
    return df.reset_index(drop=True)


def proxy_model(language: str):
    """TF-IDF + logistic regression; character n-grams for Chinese, word n-grams for English."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    if language == "zh":
        vec = TfidfVectorizer(analyzer="char", ngram_range=(1, 3), min_df=2, sublinear_tf=True)
    else:
        vec = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True, token_pattern=r"(?u)\b\w[\w']*\b")
    return make_pipeline(vec, LogisticRegression(C=4.0, max_iter=2000, class_weight="balanced"))


def _macro_f1(y_true, y_pred, labels=None) -> float:
    from sklearn.metrics import f1_score

    return round(float(f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)), 3)


def binary_predictions(model, texts: list[str]) -> np.ndarray:
    """positive/negative by the larger of the two probabilities (neutral ignored)."""
    classes = list(model.classes_)
    proba = model.predict_proba(texts)
    pos, neg = proba[:, classes.index("positive")], proba[:, classes.index("negative")]
    return np.where(pos >= neg, "positive", "negative")


def real_scores(models: dict) -> dict:
    """Fine Food (3 classes) and ChnSentiCorp (binary) scored by the models trained on generated rows."""
    from reviewops.data.clean import clean_text
    from reviewops.schema import rating_to_label

    out: dict = {}
    if FINE_FOOD.exists():
        ff = pd.read_csv(FINE_FOOD)
        texts = [clean_text(t, mask=False) for t in ff["Text"]]
        y = ff["Score"].map(rating_to_label).tolist()
        pred = models["en"].predict(texts)
        neg = ff["Score"] <= 2
        out["fine_food"] = {
            "rows": len(ff),
            "macro_f1": _macro_f1(y, pred),
            "per_class_f1": _per_class(y, pred),
            "binary_macro_f1_no_3star": _macro_f1(
                [v for v, m in zip(y, ff["Score"] != 3, strict=True) if m],
                binary_predictions(models["en"], [t for t, m in zip(texts, ff["Score"] != 3, strict=True) if m]),
            ),
            "neg_titles_called_positive": round(float((ff["Summary"][neg].fillna("").map(en_polarity) > 0).mean()), 3),
        }
    else:
        print(f"skipped Fine Food: {FINE_FOOD} not found", file=sys.stderr)
    if CHNSENTI.exists():
        cs = pd.read_csv(CHNSENTI).dropna(subset=["review"])
        texts = [clean_text(t, mask=False) for t in cs["review"]]
        y = np.where(cs["label"] == 1, "positive", "negative")
        pred = binary_predictions(models["zh"], texts)
        out["chnsenticorp"] = {
            "rows": len(cs),
            "accuracy": round(float((pred == y).mean()), 3),
            "macro_f1": _macro_f1(y, pred),
        }
    else:
        print(f"skipped ChnSentiCorp: {CHNSENTI} not found", file=sys.stderr)
    return out


def _per_class(y, pred) -> dict:
    from sklearn.metrics import f1_score

    labels = ["negative", "neutral", "positive"]
    scores = f1_score(y, pred, labels=labels, average=None, zero_division=0)
    return {k: round(float(v), 3) for k, v in zip(labels, scores, strict=True)}


def title_check(df: pd.DataFrame) -> dict:
    """Per language: share of negative reviews whose title the lexicon calls positive (and negative)."""
    out = {}
    for lang, part in df.groupby("language"):
        pol = np.array([polarity(t, str(lang)) for t in part["summary"]])
        label = part["label"].to_numpy()
        out[str(lang)] = {
            "neg_titles_called_positive": round(float((pol[label == "negative"] > 0).mean()), 3),
            "neg_titles_called_negative": round(float((pol[label == "negative"] < 0).mean()), 3),
            "pos_titles_called_negative": round(float((pol[label == "positive"] < 0).mean()), 3),
        }
    return out


def run(rows: int, seed: int, test_seed: int, zh_share: float) -> dict:
    train, test = generated(rows, seed, zh_share), generated(rows, test_seed, zh_share)
    models, held_out = {}, {}
    for lang in ("en", "zh"):
        tr, te = train[train["language"] == lang], test[test["language"] == lang]
        models[lang] = proxy_model(lang).fit(tr["text"].tolist(), tr["label"].tolist())
        pred = models[lang].predict(te["text"].tolist())
        unseen = ~te["text"].isin(set(tr["text"]))
        held_out[lang] = {
            "train_rows": len(tr),
            "test_rows": len(te),
            "macro_f1": _macro_f1(te["label"], pred),
            "per_class_f1": _per_class(te["label"], pred),
            "macro_f1_unseen_texts": _macro_f1(te["label"][unseen], pred[unseen.to_numpy()]),
            "test_texts_seen_in_train": round(float(1 - unseen.mean()), 3),
        }
    lengths = train["text"].str.len()
    return {
        "args": {"rows": rows, "seed": seed, "test_seed": test_seed, "zh_share": zh_share},
        "generated_held_out": held_out,
        "real": real_scores(models),
        "titles": title_check(train),
        "text_chars_median": {k: int(v) for k, v in lengths.groupby(train["language"]).median().items()},
    }


SUMMARY_KEYS = {
    "held_out_en_macro_f1": ("generated_held_out", "en", "macro_f1"),
    "held_out_zh_macro_f1": ("generated_held_out", "zh", "macro_f1"),
    "fine_food_macro_f1": ("real", "fine_food", "macro_f1"),
    "fine_food_binary_macro_f1": ("real", "fine_food", "binary_macro_f1_no_3star"),
    "chnsenticorp_accuracy": ("real", "chnsenticorp", "accuracy"),
    "chnsenticorp_macro_f1": ("real", "chnsenticorp", "macro_f1"),
    "neg_titles_called_positive_en": ("titles", "en", "neg_titles_called_positive"),
    "neg_titles_called_positive_zh": ("titles", "zh", "neg_titles_called_positive"),
}


def summarize(runs: list[dict]) -> dict:
    """Mean, min and max of the headline figures over the runs (seed pairs)."""
    out = {}
    for name, (a, b, c) in SUMMARY_KEYS.items():
        values = [r[a][b][c] for r in runs if b in r[a]]
        if values:
            out[name] = {"mean": round(float(np.mean(values)), 3), "min": min(values), "max": max(values)}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rows", type=int, default=3000, help="generated rows to train on (params generate.rows)")
    parser.add_argument("--seed", type=int, default=42, help="seed of the training rows (params generate.seed)")
    parser.add_argument("--test-seed", type=int, default=7, help="seed of the held-out generated rows")
    parser.add_argument("--zh-share", type=float, default=0.2, help="share of Chinese rows (params generate.zh_share)")
    parser.add_argument(
        "--repeats", type=int, default=3, help="seed pairs (seed+i, test-seed+i) to average over; the first is --seed"
    )
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    runs = [run(args.rows, args.seed + i, args.test_seed + i, args.zh_share) for i in range(args.repeats)]
    result = {"summary": summarize(runs), "runs": runs}
    text = json.dumps(result, indent=2, ensure_ascii=False)
    print(text)
    if args.json:
        args.json.write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
