"""English sentences and the gloss sequences a signer would sign for them.

The mapping is deliberately not word-for-word, so a model has to understand the text rather than copy
it: articles, copulas and auxiliaries are not signed; tense is shown by a time sign, which comes first
(time-topic-comment order: "I will go home tomorrow" -> TOMORROW I GO HOUSE); the object of like / love
/ want is topicalized ("I like coffee" -> COFFEE I LIKE); a place where something happens comes first
("we play at school" -> SCHOOL WE PLAY); adjectives follow their noun ("a big house" -> HOUSE BIG);
negation and wh-question signs come last ("where is the dog?" -> DOG WHERE); and several English words
or phrases sign the same ("home" / "house" -> HOUSE, "hi" / "hello" -> HELLO, "me" -> I).

Every gloss sequence has 1 to 4 signs. `generate_sentence(rng)` draws one (text, glosses) pair using
only `rng`, so a seeded Generator always gives the same sentence.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Literal, Sequence, TypeVar

import numpy as np

MAX_GLOSSES = 4

Agreement = Literal["1sg", "2", "pl", "3sg"]  # which verb form a subject takes
Tense = Literal["present", "progressive", "past", "future"]
T = TypeVar("T")


@dataclass(frozen=True)
class Sentence:
    text: str
    glosses: tuple[str, ...]


def pick(rng: np.random.Generator, options: Sequence[T]) -> T:
    return options[int(rng.integers(len(options)))]


def chance(rng: np.random.Generator, probability: float) -> bool:
    return bool(rng.random() < probability)


# ---------------------------------------------------------------------------------------------
# Vocabulary


@dataclass(frozen=True)
class Noun:
    gloss: str
    words: tuple[str, ...]  # English synonyms, singular
    determiners: tuple[str, ...] = ("the", "a")  # "" for none; kinship terms and mass nouns differ


@dataclass(frozen=True)
class Adjective:
    gloss: str
    words: tuple[str, ...]


@dataclass(frozen=True)
class VerbForms:
    base: str
    third: str  # he/she/it form
    past: str
    ing: str


@dataclass(frozen=True)
class Verb:
    gloss: str
    synonyms: tuple[VerbForms, ...]
    objects: tuple[Noun, ...] = ()
    # Objects of preference verbs are signed first, as the topic: COFFEE I LIKE.
    topicalized: bool = False
    stative: bool = False  # English does not say "I am wanting": no progressive


def forms(base: str, third: str, past: str, ing: str) -> VerbForms:
    return VerbForms(base, third, past, ing)


KINSHIP = ("",)
MASS = ("", "some", "the")

MOTHER = Noun("MOTHER", ("mom", "mother", "mum"), KINSHIP)
FATHER = Noun("FATHER", ("dad", "father"), KINSHIP)
FRIEND = Noun("FRIEND", ("friend", "buddy"))
CHILD = Noun("CHILD", ("child", "kid"))
DOCTOR = Noun("DOCTOR", ("doctor", "physician"))
DOG = Noun("DOG", ("dog", "puppy"))
CAT = Noun("CAT", ("cat", "kitten"))
HOUSE = Noun("HOUSE", ("house", "home"))
SCHOOL = Noun("SCHOOL", ("school",))
CAR = Noun("CAR", ("car", "automobile"))
BOOK = Noun("BOOK", ("book", "novel"))
PHONE = Noun("PHONE", ("phone", "telephone", "cellphone"))
MONEY = Noun("MONEY", ("money", "cash"), MASS)
FOOD = Noun("FOOD", ("food",), MASS)
WATER = Noun("WATER", ("water",), MASS)
COFFEE = Noun("COFFEE", ("coffee",), MASS)

PEOPLE = (MOTHER, FATHER, FRIEND, CHILD, DOCTOR)
ANIMALS = (DOG, CAT)
THINGS = (HOUSE, CAR, BOOK, PHONE, SCHOOL)
CONSUMABLES = (FOOD, WATER, COFFEE)

FEELINGS = (
    Adjective("HAPPY", ("happy", "glad")),
    Adjective("SAD", ("sad", "unhappy")),
    Adjective("TIRED", ("tired", "sleepy", "exhausted")),
    Adjective("HUNGRY", ("hungry", "starving")),
    Adjective("SICK", ("sick", "ill", "unwell")),
    Adjective("COLD", ("cold", "freezing")),
    Adjective("HOT", ("hot", "warm")),
)
QUALITIES = (
    Adjective("BIG", ("big", "large", "huge")),
    Adjective("SMALL", ("small", "little", "tiny")),
    Adjective("GOOD", ("good", "nice", "great")),
    Adjective("BAD", ("bad", "awful", "terrible")),
    Adjective("NEW", ("new",)),
    Adjective("OLD", ("old",)),
    Adjective("BEAUTIFUL", ("beautiful", "pretty", "lovely")),
)

LIKEABLE = THINGS[:4] + ANIMALS + CONSUMABLES + (MONEY,)
HAVE = Verb("HAVE", (forms("have", "has", "had", "having"), forms("own", "owns", "owned", "owning")),
            (HOUSE, CAR, BOOK, PHONE, MONEY, DOG, CAT), stative=True)
LIVE = Verb("LIVE", (forms("live", "lives", "lived", "living"),))
TRANSITIVE = (
    Verb("EAT", (forms("eat", "eats", "ate", "eating"),), (FOOD,)),
    Verb("DRINK", (forms("drink", "drinks", "drank", "drinking"),), (WATER, COFFEE)),
    Verb(
        "SEE",
        (forms("see", "sees", "saw", "seeing"), forms("watch", "watches", "watched", "watching"),
         forms("look at", "looks at", "looked at", "looking at")),
        PEOPLE + ANIMALS + (HOUSE, CAR),
    ),
    Verb("READ", (forms("read", "reads", "read", "reading"),), (BOOK,)),
    Verb("BUY", (forms("buy", "buys", "bought", "buying"), forms("purchase", "purchases", "purchased", "purchasing")),
         (HOUSE, CAR, BOOK, PHONE, FOOD, WATER, COFFEE)),
    HAVE,
    Verb("HELP", (forms("help", "helps", "helped", "helping"),), PEOPLE + ANIMALS),
    Verb("WANT", (forms("want", "wants", "wanted", "wanting"),), LIKEABLE, topicalized=True, stative=True),
    Verb("LIKE", (forms("like", "likes", "liked", "liking"), forms("enjoy", "enjoys", "enjoyed", "enjoying")),
         LIKEABLE, topicalized=True, stative=True),
    Verb("LOVE", (forms("love", "loves", "loved", "loving"), forms("adore", "adores", "adored", "adoring")),
         LIKEABLE + PEOPLE, topicalized=True, stative=True),
)
INTRANSITIVE = (
    Verb("SLEEP", (forms("sleep", "sleeps", "slept", "sleeping"), forms("nap", "naps", "napped", "napping"))),
    Verb("WORK", (forms("work", "works", "worked", "working"),)),
    Verb("PLAY", (forms("play", "plays", "played", "playing"),)),
    Verb("WAIT", (forms("wait", "waits", "waited", "waiting"),)),
    Verb("READ", (forms("read", "reads", "read", "reading"),)),
    Verb("EAT", (forms("eat", "eats", "ate", "eating"),)),
)
MOTION_VERBS = (
    Verb("GO", (forms("go", "goes", "went", "going"), forms("walk", "walks", "walked", "walking"))),
    Verb("COME", (forms("come", "comes", "came", "coming"),)),
)
# Where people go: the English phrase carries its own preposition ("go home", "go to school").
DESTINATIONS = (("HOUSE", ("home",)), ("SCHOOL", ("to school", "to the school")), ("WORK", ("to work", "to the office")))
PLACES = (("HOUSE", ("at home", "at the house")), ("SCHOOL", ("at school",)))
COGNITION = (
    Verb("KNOW", (forms("know", "knows", "knew", "knowing"),)),
    Verb("UNDERSTAND", (forms("understand", "understands", "understood", "understanding"),
                        forms("get it", "gets it", "got it", "getting it"))),
)


@dataclass(frozen=True)
class TimeWord:
    gloss: str
    phrases: tuple[str, ...]
    tense: Tense


TIMES = (
    TimeWord("NOW", ("now", "right now"), "progressive"),
    TimeWord("TODAY", ("today",), "present"),
    TimeWord("TOMORROW", ("tomorrow",), "future"),
    TimeWord("YESTERDAY", ("yesterday",), "past"),
    TimeWord("NIGHT", ("tonight",), "future"),
    TimeWord("NIGHT", ("at night", "every night"), "present"),
)

SUBJECT_PRONOUNS: tuple[tuple[str, str, Agreement], ...] = (
    ("I", "I", "1sg"), ("you", "YOU", "2"), ("we", "WE", "pl"), ("they", "THEY", "pl"),
)
OBJECT_PRONOUNS = (("me", "I"), ("you", "YOU"), ("us", "WE"), ("them", "THEY"))
POSSESSIVES = (("my", "MY"), ("your", "YOUR"))
CONTRACTED_BE = {"I": "I'm", "you": "you're", "we": "we're", "they": "they're", "it": "it's"}
BE = {
    "present": {"1sg": "am", "2": "are", "pl": "are", "3sg": "is"},
    "past": {"1sg": "was", "2": "were", "pl": "were", "3sg": "was"},
}
NEGATED_BE = {
    "is": ("is not", "isn't"), "are": ("are not", "aren't"), "am": ("am not",),
    "was": ("was not", "wasn't"), "were": ("were not", "weren't"),
}


# ---------------------------------------------------------------------------------------------
# Phrases: each returns its English and its glosses


def _article(determiner: str, word: str) -> str:
    if determiner == "a" and word[0] in "aeiou":
        return "an " + word
    return f"{determiner} {word}".strip()


def noun_phrase(rng: np.random.Generator, noun: Noun, room: int, definite: bool = False) -> tuple[str, tuple[str, ...]]:
    """"the dog" -> (DOG,), "my dog" -> (MY, DOG) when `room` allows two signs. `definite`: no "a"/"some"."""
    word = pick(rng, noun.words)
    if room >= 2 and chance(rng, 0.25):
        english, gloss = pick(rng, POSSESSIVES)
        return f"{english} {word}", (gloss, noun.gloss)
    determiners = [d for d in noun.determiners if not (definite and d in ("a", "some"))] or [""]
    return _article(pick(rng, determiners), word), (noun.gloss,)


def subject(rng: np.random.Generator, room: int, animals: bool = True) -> tuple[str, tuple[str, ...], Agreement]:
    if chance(rng, 0.55):
        english, gloss, agreement = pick(rng, SUBJECT_PRONOUNS)
        return english, (gloss,), agreement
    english, glosses = noun_phrase(rng, pick(rng, PEOPLE + ANIMALS if animals else PEOPLE), room, definite=True)
    return english, glosses, "3sg"


def verb_phrase(rng: np.random.Generator, verb: VerbForms, agreement: Agreement, tense: Tense, negated: bool) -> str:
    if tense == "future":
        will = pick(rng, ("will not", "won't")) if negated else "will"
        return f"{will} {verb.base}"
    if tense == "progressive":
        return f"{be(rng, agreement, 'present', negated)} {verb.ing}"
    if negated:
        auxiliary = "did" if tense == "past" else ("does" if agreement == "3sg" else "do")
        auxiliary = pick(rng, (auxiliary + " not", auxiliary + "n't"))
        return f"{auxiliary} {verb.base}"
    if tense == "past":
        return verb.past
    return verb.third if agreement == "3sg" else verb.base


def be(rng: np.random.Generator, agreement: Agreement, tense: Tense, negated: bool) -> str:
    if tense == "future":
        return pick(rng, ("will not be", "won't be")) if negated else "will be"
    form = BE["past" if tense == "past" else "present"][agreement]
    return pick(rng, NEGATED_BE[form]) if negated else form


def subject_and_be(rng: np.random.Generator, english: str, agreement: Agreement, tense: Tense, negated: bool) -> str:
    """ "I am", "I'm", "mom was not", ... """
    if tense == "present" and not negated and english in CONTRACTED_BE and chance(rng, 0.4):
        return CONTRACTED_BE[english]
    return f"{english} {be(rng, agreement, tense, negated)}"


def time_and_tense(rng: np.random.Generator, room: int, probability: float = 0.4) -> tuple[TimeWord | None, Tense]:
    """A time sign (or none) and the English tense that goes with it."""
    if room >= 1 and chance(rng, probability):
        time = pick(rng, TIMES)
        return time, time.tense
    return None, pick(rng, ("present", "present", "past", "progressive"))


def place_time(rng: np.random.Generator, clause: str, time: TimeWord | None) -> str:
    """Put the time phrase where English puts it: usually at the end, sometimes in front."""
    if time is None:
        return clause
    phrase = pick(rng, time.phrases)
    if phrase.startswith(("at ", "every ")) or chance(rng, 0.7):
        return f"{clause} {phrase}"
    return f"{phrase}, {clause}"


def finish(text: str, glosses: Sequence[str], mark: str = ".") -> Sentence:
    assert 1 <= len(glosses) <= MAX_GLOSSES, (text, glosses)
    return Sentence(text[0].upper() + text[1:] + mark, tuple(glosses))


def _time_glosses(time: TimeWord | None) -> tuple[str, ...]:
    return () if time is None else (time.gloss,)


# ---------------------------------------------------------------------------------------------
# Sentence templates


def greeting(rng: np.random.Generator) -> Sentence:
    gloss, phrases = pick(rng, (
        ("HELLO", ("hello", "hi", "hey", "hello there", "hi there")),
        ("BYE", ("bye", "goodbye", "bye bye", "see you later")),
        ("THANK-YOU", ("thank you", "thanks", "thanks a lot", "thank you very much", "many thanks")),
        ("SORRY", ("sorry", "I am sorry", "I'm sorry", "so sorry")),
        ("YES", ("yes", "yeah", "yes indeed")),
    ))
    text, glosses = pick(rng, phrases), (gloss,)
    if chance(rng, 0.4):  # "thanks, doctor" / "hi, my friend"
        person = pick(rng, PEOPLE)
        english, person_glosses = pick(rng, person.words), (person.gloss,)
        if chance(rng, 0.3):
            english, person_glosses = f"my {english}", ("MY", person.gloss)
        text, glosses = f"{text}, {english}", glosses + person_glosses
    return finish(text, glosses, pick(rng, ("!", ".")))


def feeling(rng: np.random.Generator) -> Sentence:
    """ "mom was tired yesterday" -> YESTERDAY MOTHER TIRED; "I'm not hungry" -> I HUNGRY NOT"""
    english, subject_glosses, agreement = subject(rng, room=2)
    negated = chance(rng, 0.2)
    room = MAX_GLOSSES - len(subject_glosses) - 1 - negated
    time, tense = time_and_tense(rng, room)
    tense = "present" if tense == "progressive" else tense
    adjective = pick(rng, FEELINGS)
    clause = f"{subject_and_be(rng, english, agreement, tense, negated)} {pick(rng, adjective.words)}"
    glosses = _time_glosses(time) + subject_glosses + (adjective.gloss,) + (("NOT",) if negated else ())
    return finish(place_time(rng, clause, time), glosses)


def description(rng: np.random.Generator) -> Sentence:
    """Adjectives follow their noun: "I have a big house" -> I HAVE HOUSE BIG."""
    adjective = pick(rng, QUALITIES)
    adjective_word = pick(rng, adjective.words)
    noun = pick(rng, THINGS + ANIMALS)
    noun_word = pick(rng, noun.words)
    form = int(rng.integers(3))
    if form == 0:  # "the car is old" / "my car is not old"
        english, noun_glosses = noun_phrase(rng, noun, room=2, definite=True)
        negated = chance(rng, 0.2) and len(noun_glosses) == 1
        clause = f"{english} {be(rng, '3sg', pick(rng, ('present', 'present', 'past')), negated)} {adjective_word}"
        return finish(clause, noun_glosses + (adjective.gloss,) + (("NOT",) if negated else ()))
    if form == 1:  # "we have a new car"
        english, subject_glosses, agreement = subject(rng, room=1)
        have = pick(rng, HAVE.synonyms)
        verb = verb_phrase(rng, have, agreement, pick(rng, ("present", "present", "past")), negated=False)
        clause = f"{english} {verb} {_article('a', adjective_word)} {noun_word}"
        return finish(clause, subject_glosses + ("HAVE", noun.gloss, adjective.gloss))
    # "they live in a small house"
    english, subject_glosses, agreement = subject(rng, room=1)
    verb = verb_phrase(rng, LIVE.synonyms[0], agreement, pick(rng, ("present", "past")), negated=False)
    home = pick(rng, HOUSE.words)
    return finish(f"{english} {verb} in {_article('a', adjective_word)} {home}", subject_glosses + ("LIVE", "HOUSE", adjective.gloss))


def _object(rng: np.random.Generator, verb: Verb, subject_glosses: tuple[str, ...], room: int) -> tuple[str, tuple[str, ...]]:
    people_allowed = any(noun in PEOPLE for noun in verb.objects)
    if people_allowed and chance(rng, 0.25):
        english, gloss = pick(rng, [p for p in OBJECT_PRONOUNS if (p[1],) != subject_glosses])
        return english, (gloss,)
    return noun_phrase(rng, pick(rng, verb.objects), room)


def action(rng: np.random.Generator) -> Sentence:
    """ "I like coffee" -> COFFEE I LIKE; "dad will buy a car tomorrow" -> TOMORROW FATHER BUY CAR"""
    verb = pick(rng, TRANSITIVE)
    english, subject_glosses, agreement = subject(rng, room=2, animals=False)
    spare = MAX_GLOSSES - len(subject_glosses) - 2  # after the verb and a one-sign object
    negated = spare >= 1 and chance(rng, 0.2)
    object_english, object_glosses = _object(rng, verb, subject_glosses, room=1 + spare - negated)
    room = MAX_GLOSSES - len(subject_glosses) - len(object_glosses) - 1 - negated
    time, tense = time_and_tense(rng, room)
    if verb.stative and tense == "progressive":
        tense = "present"
    clause = f"{english} {verb_phrase(rng, pick(rng, verb.synonyms), agreement, tense, negated)} {object_english}"
    pronoun_object = object_english in dict(OBJECT_PRONOUNS)
    if verb.topicalized and not pronoun_object:
        core = object_glosses + subject_glosses + (verb.gloss,)
    else:
        core = subject_glosses + (verb.gloss,) + object_glosses
    glosses = _time_glosses(time) + core + (("NOT",) if negated else ())
    return finish(place_time(rng, clause, time), glosses)


def movement(rng: np.random.Generator) -> Sentence:
    """ "we went to school yesterday" -> YESTERDAY WE GO SCHOOL"""
    verb = pick(rng, MOTION_VERBS)
    english, subject_glosses, agreement = subject(rng, room=1)
    destination, phrases = pick(rng, DESTINATIONS)
    negated = chance(rng, 0.15)
    time, tense = time_and_tense(rng, room=0 if negated else 1)
    clause = f"{english} {verb_phrase(rng, pick(rng, verb.synonyms), agreement, tense, negated)} {pick(rng, phrases)}"
    glosses = _time_glosses(time) + subject_glosses + (verb.gloss, destination) + (("NOT",) if negated else ())
    return finish(place_time(rng, clause, time), glosses)


def activity(rng: np.random.Generator) -> Sentence:
    """ "the kids play at school" -> SCHOOL CHILD PLAY; "I slept" -> I SLEEP"""
    verb = pick(rng, INTRANSITIVE)
    english, subject_glosses, agreement = subject(rng, room=2)
    room = MAX_GLOSSES - len(subject_glosses) - 1
    place = pick(rng, PLACES) if room >= 1 and chance(rng, 0.35) else None
    room -= place is not None
    negated = room >= 1 and chance(rng, 0.15)
    time, tense = time_and_tense(rng, room - negated)
    clause = f"{english} {verb_phrase(rng, pick(rng, verb.synonyms), agreement, tense, negated)}"
    place_glosses: tuple[str, ...] = ()
    if place is not None:
        clause += " " + pick(rng, place[1])
        place_glosses = (place[0],)
    glosses = _time_glosses(time) + place_glosses + subject_glosses + (verb.gloss,) + (("NOT",) if negated else ())
    return finish(place_time(rng, clause, time), glosses)


def cognition(rng: np.random.Generator) -> Sentence:
    """ "I don't understand" -> I UNDERSTAND NOT"""
    verb = pick(rng, COGNITION)
    english, subject_glosses, agreement = subject(rng, room=2)
    negated = chance(rng, 0.5)
    clause = f"{english} {verb_phrase(rng, pick(rng, verb.synonyms), agreement, pick(rng, ('present', 'past')), negated)}"
    return finish(clause, subject_glosses + (verb.gloss,) + (("NOT",) if negated else ()))


def _auxiliary_and_subject(rng: np.random.Generator, tense: Tense) -> tuple[str, tuple[str, ...]]:
    """("does mom", (MOTHER,)) for "where does mom live?"."""
    english, glosses, agreement = subject(rng, room=1)
    auxiliary = {"past": "did", "future": "will"}.get(tense, "does" if agreement == "3sg" else "do")
    return f"{auxiliary} {english}", glosses


NAME_OWNERS = (
    ("your", ("YOUR",)), ("mom's", ("MOTHER",)), ("dad's", ("FATHER",)), ("the dog's", ("DOG",)),
    ("the cat's", ("CAT",)), ("your friend's", ("YOUR", "FRIEND")), ("your mom's", ("YOUR", "MOTHER")),
)


def name_question(rng: np.random.Generator) -> Sentence:
    """ "what's your mom's name?" -> YOUR MOTHER NAME WHAT"""
    owner, owner_glosses = pick(rng, NAME_OWNERS)
    what = pick(rng, ("what is", "what's"))
    return finish(f"{what} {owner} name", owner_glosses + ("NAME", "WHAT"), "?")


def where_is_question(rng: np.random.Generator) -> Sentence:
    """ "where is my phone?" -> MY PHONE WHERE"""
    english, glosses = noun_phrase(rng, pick(rng, THINGS[:4] + ANIMALS + PEOPLE + (MONEY,)), room=2, definite=True)
    where = pick(rng, ("where is", "where's"))
    return finish(f"{where} {english}", glosses + ("WHERE",), "?")


def doing_question(rng: np.random.Generator) -> Sentence:
    """ "what did you eat yesterday?" -> YESTERDAY YOU EAT WHAT; "where do they live?" -> THEY LIVE WHERE"""
    wh = pick(rng, ("WHAT", "WHERE", "WHEN"))
    time, tense = (None, "present") if wh == "WHEN" else time_and_tense(rng, room=1, probability=0.3)
    tense = "present" if tense == "progressive" else tense
    opening, subject_glosses = _auxiliary_and_subject(rng, tense)
    verb = pick(rng, [v for v in TRANSITIVE if v.gloss != "HELP"] if wh == "WHAT" else INTRANSITIVE + (LIVE,))
    clause = f"{wh.lower()} {opening} {pick(rng, verb.synonyms).base}"
    glosses = _time_glosses(time) + subject_glosses + (verb.gloss, wh)
    return finish(place_time(rng, clause, time), glosses, "?")


def when_going_question(rng: np.random.Generator) -> Sentence:
    """ "when does dad come home?" -> FATHER COME HOUSE WHEN"""
    opening, subject_glosses = _auxiliary_and_subject(rng, "present")
    verb = pick(rng, MOTION_VERBS)
    destination, phrases = pick(rng, DESTINATIONS)
    clause = f"when {opening} {pick(rng, verb.synonyms).base} {pick(rng, phrases)}"
    return finish(clause, subject_glosses + (verb.gloss, destination, "WHEN"), "?")


def why_question(rng: np.random.Generator) -> Sentence:
    """ "why was the dog sad?" -> DOG SAD WHY"""
    english, subject_glosses, agreement = subject(rng, room=2)
    adjective = pick(rng, FEELINGS)
    clause = f"why {be(rng, agreement, pick(rng, ('present', 'past')), False)} {english} {pick(rng, adjective.words)}"
    return finish(clause, subject_glosses + (adjective.gloss, "WHY"), "?")


def how_question(rng: np.random.Generator) -> Sentence:
    """ "how are you doing?" -> YOU HOW"""
    english, subject_glosses, agreement = subject(rng, room=2)
    ending = pick(rng, ("", " doing")) if english in ("you", "they", "we") else ""
    return finish(f"how {be(rng, agreement, 'present', False)} {english}{ending}", subject_glosses + ("HOW",), "?")


def who_question(rng: np.random.Generator) -> Sentence:
    """ "who likes coffee?" -> COFFEE LIKE WHO; "who is hungry?" -> HUNGRY WHO"""
    if chance(rng, 0.5):
        adjective = pick(rng, FEELINGS)
        return finish(f"who is {pick(rng, adjective.words)}", (adjective.gloss, "WHO"), "?")
    verb = pick(rng, [v for v in TRANSITIVE if v.topicalized or v is HAVE])
    english, object_glosses = noun_phrase(rng, pick(rng, [n for n in verb.objects if n not in PEOPLE]), room=2)
    return finish(f"who {pick(rng, verb.synonyms).third} {english}", object_glosses + (verb.gloss, "WHO"), "?")


QUESTIONS = (name_question, where_is_question, doing_question, when_going_question, why_question, how_question, who_question)


def question(rng: np.random.Generator) -> Sentence:
    """Wh-question signs come last: "where do you live?" -> YOU LIVE WHERE."""
    return pick(rng, QUESTIONS)(rng)


def weather(rng: np.random.Generator) -> Sentence:
    """ "it will snow tomorrow" -> TOMORROW SNOW; "it isn't cold" -> COLD NOT"""
    negated = chance(rng, 0.15)
    time, tense = time_and_tense(rng, room=1, probability=0.5)
    kind = int(rng.integers(3))
    if kind == 0:  # rain, snow: weather verbs
        gloss = pick(rng, ("RAIN", "SNOW"))
        word = gloss.lower()
        verb = forms(word, word + "s", word + "ed", word + "ing")
        clause = f"it {verb_phrase(rng, verb, '3sg', tense, negated)}"
    else:  # cold, hot, sunny: "it is ..."
        gloss, words = pick(rng, (("COLD", ("cold", "freezing", "chilly")), ("HOT", ("hot", "warm")), ("SUN", ("sunny",))))
        tense = "present" if tense == "progressive" else tense
        clause = f"{subject_and_be(rng, 'it', '3sg', tense, negated)} {pick(rng, words)}"
    glosses = _time_glosses(time) + (gloss,) + (("NOT",) if negated else ())
    return finish(place_time(rng, clause, time), glosses)


def request(rng: np.random.Generator) -> Sentence:
    """ "help me, please" -> PLEASE HELP I"""
    text, glosses = pick(rng, (
        ("wait", ("WAIT",)), ("come home", ("COME", "HOUSE")), ("come to school", ("COME", "SCHOOL")),
        ("help me", ("HELP", "I")), ("help us", ("HELP", "WE")), ("help mom", ("HELP", "MOTHER")),
        ("eat", ("EAT",)), ("sleep", ("SLEEP",)), ("read the book", ("READ", "BOOK")), ("drink some water", ("DRINK", "WATER")),
    ))
    text = f"please {text}" if chance(rng, 0.5) else f"{text}, please"
    return finish(text, ("PLEASE",) + glosses, pick(rng, (".", "!")))


TEMPLATES: tuple[tuple[Callable[[np.random.Generator], Sentence], float], ...] = (
    (greeting, 0.07),
    (feeling, 0.14),
    (description, 0.12),
    (action, 0.22),
    (movement, 0.08),
    (activity, 0.1),
    (cognition, 0.03),
    (question, 0.15),
    (weather, 0.05),
    (request, 0.04),
)
_WEIGHTS = np.array([w for _, w in TEMPLATES]) / sum(w for _, w in TEMPLATES)


def generate_sentence(rng: np.random.Generator) -> Sentence:
    """One English sentence and its sign-order glosses, drawn with `rng` only."""
    template = TEMPLATES[int(rng.choice(len(TEMPLATES), p=_WEIGHTS))][0]
    return template(rng)
