"""Small hand-written text datasets for Kashf's small-data tests and benchmark (written for Shenava;
no licence needed).

- ``TOPICS``: three English topics, 14 training sentences and 4 held-out sentences each, the shape
  of a first dataset a user reports on (and of issue 12's check, whose held-out sentence "The tennis
  player lost the match in three sets." was tagged food).
- ``REVIEWS``: Persian product reviews for the two tags of the Kashf document's ``tag_texts``
  sample (``توصیه خرید``, ``عدم رضایت بعد خرید``), 14 each, with the document's own report and
  introduction sentences among them; ``REVIEWS_HELD_OUT`` are the two texts of that sample.

Held-out sentences are new sentences on the same topics: they share some of a topic's common words
(match, team, cook, phone), as texts on one topic do, never a whole phrase.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SmallDataset:
    train: dict[str, list[str]]  # tag -> its training texts (positive for it, negative for the others)
    held_out: list[tuple[str, str]]  # (text, its one tag)


TOPICS = SmallDataset(
    train={
        "sport": [
            "The striker scored twice and the team won the match.",
            "Our team won the championship after a penalty shootout.",
            "She ran the marathon in under three hours.",
            "The coach picked a new goalkeeper for the next game.",
            "The referee showed the player a red card.",
            "The swimmer won a gold medal in the final.",
            "The basketball season starts next week.",
            "Fans cheered as the cyclist won the race.",
            "The boxer defended his title over twelve rounds.",
            "The players train three evenings a week.",
            "The sprinter broke the national record at the stadium.",
            "The football league will add two new teams next year.",
            "The golfer lost the tournament on the last hole.",
            "The Olympic team brought home five gold medals.",
        ],
        "food": [
            "Add the chopped onions to the pan and fry until golden.",
            "This bakery sells the best bread in town.",
            "The soup needs more salt and a little pepper.",
            "We ordered pizza with mushrooms and extra cheese.",
            "Bake the chocolate cake for forty minutes.",
            "The restaurant serves fresh fish with lemon.",
            "She made a salad of tomatoes, cucumbers and olive oil.",
            "Rice tastes better when you rinse it before cooking.",
            "Breakfast was eggs, toast and a cup of coffee.",
            "The chef roasted the chicken with garlic and herbs.",
            "Stir the sauce slowly so that it does not burn.",
            "Cook the pasta in salted water and add butter.",
            "My grandmother's apple pie recipe uses cinnamon.",
            "The market sells ripe mangoes and sweet strawberries.",
        ],
        "technology": [
            "The new phone has a faster processor and a bigger battery.",
            "Restart the router if the internet connection drops.",
            "The software update fixed a security bug.",
            "He wrote a program in Python to sort the files.",
            "My laptop screen flickers when the battery is low.",
            "The company released an app for booking tickets online.",
            "Cloud storage keeps backups of your photos and files.",
            "The printer will not connect to the wireless network.",
            "Engineers are testing a faster computer chip.",
            "Install the latest drivers for the graphics card.",
            "The website crashed when too many users logged in.",
            "She uses a keyboard shortcut to copy the text.",
            "The database server needs more memory.",
            "Our smart watch syncs with the phone over Bluetooth.",
        ],
    },
    held_out=[
        ("The tennis player lost the match in three sets.", "sport"),
        ("The hockey team scored in the final minute of the game.", "sport"),
        ("A young athlete won the long jump at the school championship.", "sport"),
        ("The rugby players celebrated their win with the fans.", "sport"),
        ("Slice the carrots and cook them in the soup for ten minutes.", "food"),
        ("This curry is too spicy, add some rice and yoghurt.", "food"),
        ("We had pancakes with honey and coffee for breakfast.", "food"),
        ("The waiter brought us bread, cheese and a fresh salad.", "food"),
        ("The hard drive is full, so delete some old files.", "technology"),
        ("Update the app to change your password on the phone.", "technology"),
        ("A virus slowed down the office computers and the network.", "technology"),
        ("The tablet battery charges through a USB cable.", "technology"),
    ],
)

RECOMMEND, DISSATISFIED = "توصیه خرید", "عدم رضایت بعد خرید"

REVIEWS = SmallDataset(
    train={
        RECOMMEND: [
            "پیشنهاد میکنم از این بخرید خیلی عالیه.",
            "با این قیمت بهترین انتخابه حتما بخرید.",
            "من راضیم و به دوستام هم معرفیش کردم.",
            "کیفیتش عالیه و ارزش خرید داره.",
            "خرید این محصول رو به همه توصیه میکنم.",
            "یک ساله استفاده میکنم و هنوز مثل روز اوله.",
            "جنسش خوبه و قیمتش مناسبه، پیشنهاد میشه.",
            "بی نظیره، دوباره هم میخرمش.",
            "بی شک بهترین خریدی بود که کردم.",
            "سه ماهه خریدم مشکلی نداشتم.",
            "خیلی عالی بود.",
            "اگه دنبال یه گوشی خوب هستین همینو بگیرین.",
            "کارش حرف نداره، به همه پیشنهادش میکنم.",
            "نسبت به قیمتش کیفیت فوق العاده ای داره.",
        ],
        DISSATISFIED: [
            "بعد از یک هفته از کار افتاد.",
            "اصلا راضی نیستم، پولم هدر رفت.",
            "رنگش با عکس سایت فرق داشت.",
            "کیفیت ساختش خیلی پایینه و زود خراب شد.",
            "باتریش نصف روز هم دوام نمیاره.",
            "جنسش بی کیفیته، اصلا نخرید.",
            "از خریدم پشیمونم، ارزش این پول رو نداره.",
            "بعد از دو بار شستن رنگش رفت.",
            "صداش خش داره و پشتیبانی هم جواب نمیده.",
            "اندازه اش کوچیک تر از چیزی بود که نوشته بودن.",
            "دکمه هاش بعد از یک ماه شل شد.",
            "خیلی بد بود، اصلا توصیه نمیکنم.",
            "شارژر همراهش کار نمیکرد و مجبور شدم یکی دیگه بخرم.",
            "جنس پارچه اش خیلی نازک و بی کیفیته.",
        ],
    },
    held_out=[
        ("ارزش خریدنش رو بی شک داره", RECOMMEND),
        ("اصلا اصلا کیفیت نداره رنگش بااین عکس زمین تاآسمون فرق داره", DISSATISFIED),
    ],
)


def reports(dataset: SmallDataset) -> dict[str, dict[int, bool]]:
    """Each tag's reports on the training texts (numbered in tag order): positive for its own
    texts, negative for every other tag's, as issue 12's check reported them."""
    texts = training_texts(dataset)
    return {tag: {n: label == tag for n, (_, label) in enumerate(texts)} for tag in dataset.train}


def training_texts(dataset: SmallDataset) -> list[tuple[str, str]]:
    return [(text, tag) for tag, texts in dataset.train.items() for text in texts]
