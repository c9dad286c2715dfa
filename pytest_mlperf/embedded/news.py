"""Deterministic synthetic news articles with CNN-style highlights.

Every article is drawn from ``random.Random(seed)`` alone, so a seed names one article on every
machine and Python version (``random`` guarantees its sequence for a given integer seed). An
article is built from a handful of *key facts*, each a pair of templates filled with the same
slots: the sentence the article prints and the shorter highlight that restates it. Filler and
background sentences pad the article to 150-350 words but never reach the highlights, so the
highlights are a learnable function of the article: find the key facts, restate them briefly,
copy the names and numbers. That is what lets a model of a few million parameters summarize.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

__all__ = ["Article", "generate", "articles", "CATEGORIES"]


@dataclass(frozen=True, slots=True)
class Article:
    seed: int
    category: str
    text: str
    highlights: str  # one sentence a line, like CNN/DailyMail's highlights


# --- slot values -------------------------------------------------------------------------------

MALE = (
    "James John Robert Michael David William Richard Thomas Daniel Matthew Anthony Mark Paul "
    "Steven Andrew Kevin Brian George Edward Ronald Peter Simon Oliver Harry Jack Samuel Adam "
    "Luis Carlos Ahmed Omar Ravi Arjun Hiroshi Kenji Pierre Lucas Marco Stefan Ivan Felix Owen"
).split()
FEMALE = (
    "Mary Patricia Jennifer Linda Elizabeth Susan Jessica Sarah Karen Nancy Lisa Margaret Emily "
    "Laura Rachel Hannah Sophie Emma Olivia Grace Chloe Alice Claire Helen Anna Maria Lucia "
    "Fatima Aisha Priya Mei Yuki Ingrid Elena Natalia Chiara Amelia Ruth Julia Megan Victoria"
).split()
LAST = (
    "Smith Johnson Williams Brown Jones Miller Davis Wilson Anderson Taylor Thomas Moore Martin "
    "Jackson Thompson White Harris Clark Lewis Walker Hall Allen Young King Wright Scott Green "
    "Baker Adams Nelson Hill Campbell Mitchell Roberts Carter Phillips Evans Turner Parker "
    "Collins Edwards Stewart Morris Murphy Cook Rogers Morgan Cooper Peterson Reed Bailey Kelly "
    "Howard Ward Cox Richardson Wood Watson Brooks Bennett Gray Hughes Price Sanders Patel Khan "
    "Singh Chen Wang Tanaka Sato Garcia Lopez Rossi Bianchi Muller Schmidt Novak Dubois Larsen "
    "Okafor Mensah Haddad Nakamura Kowalski Fischer Silva Costa Jensen Byrne Walsh Fraser"
).split()
CITIES = [
    ("London", "Britain"), ("Manchester", "Britain"), ("Leeds", "Britain"), ("Glasgow", "Scotland"),
    ("Cardiff", "Wales"), ("Dublin", "Ireland"), ("Paris", "France"), ("Lyon", "France"),
    ("Berlin", "Germany"), ("Munich", "Germany"), ("Madrid", "Spain"), ("Seville", "Spain"),
    ("Rome", "Italy"), ("Milan", "Italy"), ("Amsterdam", "the Netherlands"), ("Oslo", "Norway"),
    ("Stockholm", "Sweden"), ("Warsaw", "Poland"), ("Athens", "Greece"), ("Lisbon", "Portugal"),
    ("New York", "the United States"), ("Chicago", "the United States"),
    ("Houston", "the United States"), ("Atlanta", "the United States"),
    ("Denver", "the United States"), ("Seattle", "the United States"),
    ("Boston", "the United States"), ("Miami", "the United States"), ("Toronto", "Canada"),
    ("Vancouver", "Canada"), ("Sydney", "Australia"), ("Melbourne", "Australia"),
    ("Auckland", "New Zealand"), ("Tokyo", "Japan"), ("Osaka", "Japan"), ("Seoul", "South Korea"),
    ("Mumbai", "India"), ("Delhi", "India"), ("Nairobi", "Kenya"), ("Lagos", "Nigeria"),
    ("Cape Town", "South Africa"), ("Cairo", "Egypt"), ("Mexico City", "Mexico"),
    ("Buenos Aires", "Argentina"), ("Sao Paulo", "Brazil"), ("Singapore", "Singapore"),
]
REGIONS = (
    "the south-west coast|northern England|the east coast|the Highlands|the Gulf coast|"
    "the Midwest|the Pacific Northwest|southern Spain|the north of Italy|the Baltic coast|"
    "the Alps|eastern Australia|the Kanto region|the Atlantic provinces|the west of Ireland"
).split("|")
WEEKDAYS = "Monday Tuesday Wednesday Thursday Friday Saturday Sunday".split()
MONTHS = (
    "January February March April May June July August September October November December"
).split()
ORDINALS = "second third fourth fifth sixth seventh eighth ninth tenth".split()


def _nth(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


class _Slots:
    """The random choices one article makes, with a few helpers for names and numbers."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def pick(self, seq):
        return seq[self.rng.randrange(len(seq))]

    def person(self) -> tuple[str, str, str]:
        """(full name, surname, 'he'/'she')."""
        female = self.rng.random() < 0.5
        first = self.pick(FEMALE if female else MALE)
        last = self.pick(LAST)
        return f"{first} {last}", last, "she" if female else "he"

    def city(self) -> tuple[str, str]:
        return self.pick(CITIES)

    def day(self) -> str:
        return self.pick(WEEKDAYS)

    def date(self) -> str:
        return f"{self.pick(MONTHS)} {self.rng.randint(1, 28)}"

    def count(self, lo: int, hi: int, step: int = 1) -> str:
        return f"{self.rng.randrange(lo, hi + 1, step):,}"

    def money(self) -> str:
        unit = self.pick(["$", "$", "\u00a3", "\u20ac"])
        if self.rng.random() < 0.6:
            return f"{unit}{self.rng.randint(2, 950)} million"
        return f"{unit}{self.rng.randint(11, 99) / 10:.1f} billion"


# --- one category = one function returning (key facts, quote, fillers) ---------------------------
#
# A key fact is a list of (article sentence, highlight) template pairs; one pair is drawn and both
# halves are filled from the same slots. Optional facts (4th entry) appear in the article and in
# the highlights together, or in neither.

Fact = list[tuple[str, str]]
Category = Callable[[_Slots], tuple[dict, list[Fact], Fact, list[str]]]


def _politics(s: _Slots):
    name, last, he = s.person()
    oname, olast, _ = s.person()
    city, country = s.city()
    topic_verb, topic = s.pick([
        ("cut", "income tax for low earners"), ("raise", "the minimum wage"),
        ("build", "300,000 new homes"), ("ban", "single-use plastics"),
        ("reform", "the pension system"), ("expand", "free childcare"),
        ("scrap", "university tuition fees"), ("tighten", "immigration rules"),
        ("increase", "spending on hospitals"), ("lower", "the voting age to 16"),
        ("nationalise", "the rail network"), ("double", "funding for schools"),
    ])
    slots = dict(
        name=name, last=last, he=he, His=he == "he" and "His" or "Her", oname=oname,
        olast=olast, city=city, country=country, verb=topic_verb, topic=topic,
        title=s.pick(["Prime Minister", "Finance Minister", "President", "Senator", "Governor",
                      "Mayor", "Interior Minister", "Health Secretary"]),
        party=s.pick(["Progressive Party", "National Alliance", "Liberal Democrats",
                      "Green Party", "Conservative Union", "Social Democrats", "Reform Party"]),
        yes=s.rng.randint(180, 320), no=s.rng.randint(90, 179), day=s.day(),
        cost=s.money(), years=s.rng.randint(2, 10), month=s.pick(MONTHS),
        year=s.rng.randint(2025, 2031), pct=s.rng.randint(31, 64),
    )
    facts = [
        [("{title} {name} has announced plans to {verb} {topic}, saying the country could "
          "not afford to wait any longer.",
          "{title} {name} announces plans to {verb} {topic}."),
         ("Lawmakers in {country} voted {yes} to {no} on {day} to pass a bill that will {verb} "
          "{topic}, handing a major victory to {title} {name}.",
          "Lawmakers in {country} vote {yes} to {no} to {verb} {topic}."),
         ("The government of {country} will {verb} {topic} under a plan unveiled by {title} "
          "{name} in {city} on {day}.",
          "{country} to {verb} {topic} under plan unveiled by {name}.")],
        [("The plan is expected to cost {cost} over the next {years} years, according to "
          "official estimates.", "The plan is expected to cost {cost} over {years} years."),
         ("Treasury officials say the measure will cost {cost} over {years} years, to be paid "
          "for by higher borrowing.", "Measure will cost {cost} over {years} years.")],
        [("Opposition leader {oname} called the proposal reckless and vowed to fight it in "
          "parliament.", "Opposition leader {oname} vows to fight the proposal."),
         ("But {oname}, who leads the {party}, said the idea would fail and urged voters to "
          "reject it.", "{party} leader {oname} says the idea will fail.")],
        [("A poll published on {day} found that {pct} per cent of voters support the plan.",
          "Poll finds {pct} per cent of voters support the plan."),
         ("The changes are due to come into force in {month} {year}.",
          "Changes due to come into force in {month} {year}.")],
    ]
    quote = [("\"This is about fairness for every family in {country},\" {last} told "
              "reporters in {city}. \"We have waited too long.\"", "")]
    fillers = [
        "The announcement follows months of debate within the governing coalition.",
        "Critics have long argued that the current system leaves too many people behind.",
        "{last} first raised the idea during last year's election campaign.",
        "Members of the {party} met late into the night to discuss their response.",
        "Business groups gave the proposal a cautious welcome but asked for more detail.",
        "Several senior figures are said to have privately questioned the timing.",
        "Analysts said the move was aimed at winning back voters in {city} and other cities.",
        "A spokesman for {last} declined to say how many officials had been consulted.",
        "Protesters gathered outside the parliament building as the debate went on.",
        "{olast} has led the opposition for the past {years} years.",
        "The last major change to the policy was made more than a decade ago.",
        "Newspapers in {country} were divided in their response on {day} morning.",
        "Further details are expected to be published in the coming weeks.",
    ]
    return slots, facts, quote, fillers


def _sport(s: _Slots):
    c1, _ = s.city()
    c2, _ = s.city()
    while c2 == c1:
        c2, _ = s.city()
    t1 = f"{c1} {s.pick(['United', 'City', 'Rovers', 'Athletic', 'Wanderers', 'Rangers'])}"
    t2 = f"{c2} {s.pick(['Falcons', 'Lions', 'Eagles', 'Tigers', 'Sharks', 'Stars'])}"
    g1 = s.rng.randint(2, 5)
    g2 = s.rng.randint(0, g1 - 1)
    scorer, slast, he = s.person()
    coach, clast, _ = s.person()
    injured, ilast, _ = s.person()
    slots = dict(
        t1=t1, t2=t2, g1=g1, g2=g2, scorer=scorer, slast=slast, he=he, coach=coach,
        clast=clast, injured=injured, ilast=ilast, day=s.day(),
        ground=s.pick(["Park Stadium", "the Riverside Ground", "Victoria Park", "the Arena",
                       "Memorial Stadium", "Kingsway"]),
        minute=_nth(s.rng.randint(5, 89)), crowd=s.count(8000, 75000, 100),
        cup=s.pick(["the league", "the Premier Division", "the Championship", "the Cup",
                    "the Continental League"]),
        place=s.pick(ORDINALS[:6]), points=s.rng.randint(2, 12), weeks=s.rng.randint(2, 10),
        injury=s.pick(["knee", "hamstring", "calf", "shoulder", "back"]), city=c1,
    )
    facts = [
        [("{t1} beat {t2} {g1}-{g2} at {ground} on {day} to extend their unbeaten run.",
          "{t1} beat {t2} {g1}-{g2} at {ground}."),
         ("{t1} came from behind to beat {t2} {g1}-{g2} in front of {crowd} fans on {day}.",
          "{t1} come from behind to beat {t2} {g1}-{g2}."),
         ("A late rally gave {t1} a {g1}-{g2} win over {t2} in {cup} on {day} night.",
          "{t1} beat {t2} {g1}-{g2} in {cup}.")],
        [("{scorer} scored the decisive goal in the {minute} minute, {his} tenth of the season.",
          "{scorer} scores the decisive goal in the {minute} minute."),
         ("Striker {scorer} struck in the {minute} minute to settle the match.",
          "{scorer} strikes in the {minute} minute.")],
        [("The result lifts {t1} to {place} place in {cup}, {points} points behind the leaders.",
          "Win lifts {t1} to {place} in {cup}."),
         ("Victory leaves {t1} in {place} place, {points} points off the top of {cup}.",
          "{t1} are {place}, {points} points off the top.")],
        [("{injured} was carried off with a {injury} injury and is expected to miss {weeks} "
          "weeks.", "{injured} to miss {weeks} weeks with a {injury} injury."),
         ("Manager {coach} confirmed that {injured} will be out for {weeks} weeks with a "
          "{injury} problem.", "{injured} out for {weeks} weeks with {injury} problem.")],
    ]
    slots["his"] = "his" if he == "he" else "her"
    quote = [("\"I am so proud of the players, they never gave up,\" {coach} said after the "
              "final whistle.", "")]
    fillers = [
        "{t2} had started the brighter of the two sides and hit the post early on.",
        "The visitors were reduced to ten men shortly after half-time.",
        "Rain fell steadily throughout the second half, making the pitch heavy.",
        "{clast} made three changes to the side that lost last weekend.",
        "It was the first time {t1} had won at {ground} since the opening day of the season.",
        "Supporters stayed long after the whistle to applaud the team off the pitch.",
        "The referee booked five players in a bad-tempered first half.",
        "{t2} have now gone four games without a win.",
        "{slast} joined the club from a rival last summer.",
        "Both teams play again in midweek.",
        "The home side's goalkeeper made a string of fine saves before the break.",
        "Television replays suggested the equaliser should have been ruled out.",
        "Tickets for the match had sold out within hours.",
    ]
    return slots, facts, quote, fillers


def _business(s: _Slots):
    ceo, clast, he = s.person()
    city, country = s.city()
    company = s.pick([f"{s.pick(LAST)} Holdings", f"{s.pick(LAST)} & Sons", "Norvex",
                      "Aldmark", "Brightway", "Castellan Group", "Orion Foods", "Meridian Bank",
                      "Kestrel Motors", "Harbour Retail", "Vantage Energy", "Solace Airlines"])
    up = s.rng.random() < 0.5
    slots = dict(
        company=company, ceo=ceo, clast=clast, city=city, country=country,
        move="rise" if up else "fall", moved="rose" if up else "fell",
        profit=s.money(), pct=s.rng.randint(3, 48), share=s.rng.randint(2, 19),
        jobs=s.count(120, 4800, 10), cut="create" if up else "cut",
        stores=s.rng.randint(8, 140), day=s.day(),
        reason=s.pick(["strong demand in Asia", "higher energy costs", "weak consumer spending",
                       "a successful cost-cutting drive", "rising interest rates",
                       "record online sales"]),
        sector=s.pick(["retail", "manufacturing", "logistics", "customer service", "finance"]),
    )
    facts = [
        [("{company} has reported a {pct} per cent {move} in annual profits to {profit}, "
          "blaming {reason}." if not up else
          "{company} has reported a {pct} per cent {move} in annual profits to {profit}, "
          "helped by {reason}.",
          "{company} reports {pct} per cent profit {move} to {profit}."),
         ("Profits at {company} {moved} by {pct} per cent to {profit} last year, the "
          "{city}-based firm said on {day}.",
          "Profits at {company} {moved} {pct} per cent to {profit}.")],
        [("The company said it would {cut} {jobs} jobs in its {sector} division over the next "
          "year.", "Firm to {cut} {jobs} jobs in {sector} division."),
         ("As part of the plan, {company} will {cut} {jobs} jobs across {country}.",
          "{jobs} jobs to go in {country}." if not up else "{jobs} new jobs in {country}.")],
        [("Shares in {company} {moved} {share} per cent in early trading.",
          "Shares {moved} {share} per cent."),
         ("Investors reacted quickly, and the shares {moved} {share} per cent by midday.",
          "Shares {moved} {share} per cent by midday.")],
        [("Chief executive {ceo} said the results reflected {reason}.",
          "Chief executive {ceo} points to {reason}."),
         ("The group also plans to close {stores} of its stores by the end of the year.",
          "Group to close {stores} stores by year end.")],
    ]
    quote = [("\"We have made difficult decisions, but the business is in good shape,\" "
              "{clast} told analysts on a call.", "")]
    fillers = [
        "The figures were slightly better than analysts had expected.",
        "{company} employs around {jobs} people in {city} alone.",
        "The firm was founded more than sixty years ago.",
        "Unions said they would seek urgent talks with management.",
        "Competition in the sector has grown sharply in recent years.",
        "{clast} took charge of the company three years ago.",
        "The company will pay a final dividend to shareholders in the summer.",
        "Rival firms have reported similar pressures in recent months.",
        "Sales in its largest market were flat over the period.",
        "The group did not say which sites would be most affected.",
        "Economists said the results were a sign of wider trends in {country}.",
        "A full strategy update is due later this year.",
    ]
    return slots, facts, quote, fillers


def _weather(s: _Slots):
    name, last, he = s.person()
    region = s.pick(REGIONS)
    city, country = s.city()
    slots = dict(
        storm=s.pick(["Agnes", "Barbara", "Ciaran", "Dennis", "Ellen", "Franklin", "Gerrit",
                      "Helena", "Isha", "Jocelyn", "Kathleen", "Lilian", "Marco", "Nadia"]),
        region=region, city=city, country=country, name=name, last=last,
        mph=s.rng.randint(60, 110), rain=s.rng.randint(40, 220), homes=s.count(2000, 90000, 100),
        dead=s.rng.randint(2, 14), hurt=s.rng.randint(5, 60), day=s.day(), day2=s.day(),
        colour=s.pick(["red", "amber", "yellow"]), flights=s.rng.randint(40, 400),
        agency=s.pick(["national weather service", "Met Office", "meteorological agency"]),
    )
    facts = [
        [("Storm {storm} battered {region} on {day}, bringing winds of up to {mph} mph and "
          "heavy rain.", "Storm {storm} hits {region} with winds of up to {mph} mph."),
         ("Winds of up to {mph} mph swept across {region} on {day} as Storm {storm} made "
          "landfall.", "Storm {storm} brings {mph} mph winds to {region}.")],
        [("More than {homes} homes were left without power, energy companies said.",
          "More than {homes} homes left without power."),
         ("Power was cut to {homes} homes and {flights} flights were cancelled at {city} "
          "airport.", "{homes} homes without power and {flights} flights cancelled.")],
        [("At least {dead} people have been killed and {hurt} injured, officials said.",
          "At least {dead} people killed and {hurt} injured."),
         ("Officials confirmed that {dead} people had died, most of them hit by falling trees.",
          "{dead} people dead, most hit by falling trees.")],
        [("The {agency} has issued a {colour} warning for {region} until {day2}.",
          "{colour} warning in place until {day2}."),
         ("Up to {rain} mm of rain is expected to fall in some areas before {day2}.",
          "Up to {rain} mm of rain expected before {day2}.")],
    ]
    quote = [("\"Please do not travel unless your journey is absolutely necessary,\" said "
              "{name}, a forecaster with the {agency}.", "")]
    fillers = [
        "Emergency crews worked through the night to clear fallen trees from roads.",
        "Several schools in {city} were closed as a precaution.",
        "Rail services were suspended on a number of lines.",
        "Residents in low-lying areas were advised to move to higher ground.",
        "It is the {ord} named storm to hit the region this season.",
        "Coastal roads were closed after waves crashed over sea walls.",
        "Insurance companies said claims were likely to run into the millions.",
        "Ferry crossings were cancelled for a second day.",
        "Volunteers handed out sandbags to homeowners on {day}.",
        "Forecasters said calmer weather should arrive by the weekend.",
        "Some villages were cut off for several hours by flood water.",
        "Local councils opened emergency shelters in sports halls.",
    ]
    slots["ord"] = s.pick(ORDINALS[:5])
    return slots, facts, quote, fillers


def _crime(s: _Slots):
    name, last, he = s.person()
    det, dlast, _ = s.person()
    city, country = s.city()
    crime, short = s.pick([
        ("a jewellery shop was robbed at gunpoint", "armed robbery at jewellery shop"),
        ("a string of burglaries in the north of the city", "string of burglaries"),
        ("a pensioner was attacked in a park", "attack on pensioner in park"),
        ("cash was stolen from a security van", "theft from security van"),
        ("a fire was started at a warehouse", "warehouse fire"),
        ("a bank was defrauded of large sums", "bank fraud"),
        ("a car was stolen with a baby inside", "theft of car with baby inside"),
    ])
    slots = dict(
        name=name, last=last, he=he, det=det, dlast=dlast, city=city, country=country,
        crime=crime, short=short, age=s.rng.randint(19, 67), day=s.day(), day2=s.day(),
        amount=s.money(), years=s.rng.randint(2, 14), nth=_nth(s.rng.randint(3, 12)),
        man="man" if he == "he" else "woman",
    )
    facts = [
        [("A {age}-year-old {man} has been arrested in {city} after {crime} on {day}, police "
          "said.", "{man}, {age}, arrested in {city} after {short}."),
         ("Police in {city} have charged {name}, {age}, after {crime} on {day}.",
          "{name}, {age}, charged over {short} in {city}.")],
        [("{name} is due to appear in court on {day2}.", "{last} due in court on {day2}."),
         ("{last} was remanded in custody and will appear before a judge on {day2}.",
          "{last} remanded in custody until {day2}.")],
        [("Detective Inspector {det} appealed for anyone with information to come forward.",
          "Police appeal for witnesses."),
         ("Detectives said the total value of the stolen goods was around {amount}.",
          "Stolen goods worth around {amount}.")],
        [("It is the {nth} such incident reported in the area this year.",
          "{nth} incident in the area this year."),
         ("If convicted, {last} faces up to {years} years in prison.",
          "{last} faces up to {years} years in prison if convicted.")],
    ]
    quote = [("\"This was a frightening incident for the community and we are determined to "
              "find out exactly what happened,\" {dlast} said.", "")]
    fillers = [
        "Officers were called to the scene shortly after 10pm.",
        "A cordon remained in place for several hours while forensic teams searched the area.",
        "Neighbours described hearing shouting before the police arrived.",
        "The suspect was taken to a police station in the centre of {city}.",
        "Nobody else is being sought in connection with the incident.",
        "Extra patrols will be carried out in the area over the coming days.",
        "CCTV footage from nearby shops is being examined.",
        "Residents said the street was usually quiet.",
        "Police have not released details of how the suspect was identified.",
        "A local councillor said people were shocked by what had happened.",
        "The force said it had received several calls from members of the public.",
        "Victim support officers have been offered to those affected.",
    ]
    return slots, facts, quote, fillers


def _science(s: _Slots):
    name, last, he = s.person()
    city, country = s.city()
    thing, kind = s.pick([
        ("a new species of frog", "frog"), ("a new species of beetle", "beetle"),
        ("the fossil of a giant lizard", "fossil"), ("a planet orbiting a nearby star", "planet"),
        ("a new species of deep-sea fish", "fish"), ("the remains of a Roman villa", "villa"),
        ("a new type of bacteria that eats plastic", "bacteria"),
        ("a comet heading towards the inner solar system", "comet"),
    ])
    slots = dict(
        name=name, last=last, he=he, city=city, country=country, thing=thing, kind=kind,
        place=s.pick(["the Amazon rainforest", "the Andes", "Madagascar", "the Pacific Ocean",
                      "the Sahara", "Borneo", "Antarctica", "the Gobi desert", "the Arctic"]),
        journal=s.pick(["Nature", "Science", "Current Biology", "the Astrophysical Journal",
                        "Scientific Reports"]),
        size=s.rng.randint(2, 90), age=s.rng.randint(2, 180), team=s.rng.randint(6, 40),
        day=s.day(),
    )
    facts = [
        [("Scientists at the University of {city} say they have found {thing} in {place}.",
          "Scientists find {thing} in {place}."),
         ("A team of {team} researchers has discovered {thing} in {place}, it was announced on "
          "{day}.", "Team of {team} researchers discovers {thing} in {place}.")],
        [("The {kind} measures about {size} centimetres and is thought to be {age} million "
          "years old.", "The {kind} is about {size} cm long and {age} million years old."),
         ("Researchers believe the {kind} could be as much as {age} million years old.",
          "The {kind} may be {age} million years old.")],
        [("The findings were published on {day} in the journal {journal}.",
          "Findings published in {journal}."),
         ("Details of the discovery appear in {journal} this week.",
          "Discovery described in {journal}.")],
        [("Lead author Dr {name} said the find could change how scientists think about "
          "evolution.", "Dr {name} says the find could change thinking on evolution."),
         ("The team now plans to return to {place} next year to search for more.",
          "Team to return to {place} next year.")],
    ]
    quote = [("\"When we first saw it we could hardly believe our eyes,\" {last} said. \"It "
              "is unlike anything we have seen before.\"", "")]
    fillers = [
        "The expedition was funded by a grant from a national research council.",
        "Samples have been sent to laboratories in {city} for further analysis.",
        "Other experts said the results would need to be confirmed by independent tests.",
        "The area is difficult to reach and has rarely been studied.",
        "Work at the site took almost three years to complete.",
        "Local guides helped the team during the months spent in the field.",
        "The discovery adds to a growing list of finds from the region.",
        "Researchers used a combination of old maps and satellite images.",
        "Some scientists had predicted such a find for many years.",
        "{last} has worked in the field for more than two decades.",
        "The university said it would put some of the material on public display.",
        "Funding for a second phase of the project has not yet been agreed.",
    ]
    return slots, facts, quote, fillers


def _health(s: _Slots):
    name, last, he = s.person()
    city, country = s.city()
    do, doing = s.pick([
        ("drink two cups of coffee a day", "Drinking two cups of coffee a day"),
        ("walk for 30 minutes a day", "Walking for 30 minutes a day"),
        ("eat a handful of nuts every day", "Eating a handful of nuts every day"),
        ("sleep fewer than six hours a night", "Sleeping fewer than six hours a night"),
        ("spend more than four hours a day sitting", "Sitting for more than four hours a day"),
        ("eat fish twice a week", "Eating fish twice a week"),
        ("take up gardening", "Gardening"),
    ])
    disease = s.pick(["heart disease", "type 2 diabetes", "dementia", "stroke", "depression",
                      "high blood pressure"])
    lower = s.rng.random() < 0.6
    slots = dict(
        name=name, last=last, he=he, city=city, country=country, do=do, doing=doing,
        disease=disease, pct=s.rng.randint(12, 45), less="less" if lower else "more",
        lower="lower" if lower else "higher", n=s.count(2000, 90000, 100),
        years=s.rng.randint(3, 25), day=s.day(), age=s.rng.randint(40, 70),
        inst=s.pick([f"the University of {city}", f"{city} Medical School",
                     "the National Institute of Health Research", f"{city} General Hospital"]),
    )
    facts = [
        [("People who {do} are {pct} per cent {less} likely to develop {disease}, according to "
          "a new study.", "{doing} linked to {pct} per cent {lower} risk of {disease}."),
         ("{doing} could change the risk of {disease} by as much as {pct} per cent, researchers "
          "say.", "{doing} may change risk of {disease} by {pct} per cent.")],
        [("Researchers at {inst} followed {n} adults for {years} years.",
          "Study followed {n} adults for {years} years."),
         ("The study, carried out by {inst}, tracked {n} people over {years} years.",
          "Researchers tracked {n} people over {years} years.")],
        [("The effect was strongest among those aged over {age}.",
          "Effect strongest in people over {age}."),
         ("The team said the link held even after taking account of diet and smoking.",
          "Link held after accounting for diet and smoking.")],
        [("Dr {name}, who led the research, said more work was needed to prove cause and "
          "effect.", "Dr {name} says more work is needed to prove cause and effect."),
         ("The results were presented at a conference in {city} on {day}.",
          "Results presented at conference in {city}.")],
    ]
    quote = [("\"This is a simple change that many people could make,\" said {name}. \"But "
              "it is not a magic bullet.\"", "")]
    fillers = [
        "Previous studies have produced mixed results.",
        "Participants filled in detailed questionnaires about their lifestyles.",
        "Health charities welcomed the findings but urged caution.",
        "The research was funded by a public health body and a university grant.",
        "Around one in ten adults in {country} is thought to be affected by {disease}.",
        "The team plans a larger trial over the next few years.",
        "Doctors say a balanced diet and regular exercise remain the best advice.",
        "Some of the participants were followed up with blood tests.",
        "The researchers stressed that the study showed a link, not proof.",
        "Experts not involved in the work called it well designed.",
        "Rates of {disease} have risen steadily over the past two decades.",
        "Many of those taking part were recruited through local doctors' surgeries.",
    ]
    return slots, facts, quote, fillers


def _technology(s: _Slots):
    ceo, clast, he = s.person()
    city, country = s.city()
    company = s.pick(["Lumetra", "Quillion", "Novabyte", "Stratus Labs", "Pixelgate",
                      "Cobalt Systems", "Arcwave", "Tessellate"])
    product, kind = s.pick([("the Halo X", "smartphone"), ("the Orbit", "smartwatch"),
                            ("the Vista Pro", "tablet"), ("the Pulse", "pair of earbuds"),
                            ("the Nimbus", "laptop"), ("the Beacon", "home speaker"),
                            ("the Drift", "electric scooter")])
    slots = dict(
        company=company, ceo=ceo, clast=clast, city=city, country=country, product=product,
        kind=kind, price=f"${s.rng.randint(99, 1499)}", date=s.date(),
        users=s.rng.randint(2, 90), hours=s.rng.randint(10, 72), day=s.day(),
        breach=s.count(20000, 900000, 1000),
    )
    facts = [
        [("{company} has unveiled {product}, a new {kind} it hopes will win back customers.",
          "{company} unveils {product} {kind}."),
         ("Technology firm {company} launched {product}, its latest {kind}, at an event in "
          "{city} on {day}.", "{company} launches {product} {kind} in {city}.")],
        [("The device goes on sale on {date} priced at {price}.",
          "On sale on {date} for {price}."),
         ("It will cost {price} and will be available from {date}.",
          "Costs {price}, available from {date}.")],
        [("The company claims the battery lasts up to {hours} hours on a single charge.",
          "Battery said to last up to {hours} hours."),
         ("{company} said more than {users} million people already use its products.",
          "{company} has more than {users} million users.")],
        [("Separately, the firm admitted that data belonging to {breach} customers had been "
          "exposed in a security breach.", "Data of {breach} customers exposed in breach."),
         ("Chief executive {ceo} said the launch was the most important in the company's "
          "history.", "{ceo} calls it the company's most important launch.")],
    ]
    quote = [("\"We listened to what our customers told us and built something better,\" "
              "{clast} told the audience.", "")]
    fillers = [
        "The launch had been widely expected after weeks of online leaks.",
        "Reviewers who tried the device said it felt lighter than the previous model.",
        "Rivals are expected to announce competing products later this year.",
        "{company} has been under pressure from investors after a difficult year.",
        "The company said the device would also be sold in {country} and Japan.",
        "Some analysts questioned whether the price was too high.",
        "Production has been moved to a new factory to meet demand.",
        "The event was streamed online and watched by thousands.",
        "A software update for older models will be released at the same time.",
        "{clast} has run the firm since it was founded in a garage in {city}.",
        "Shares in {company} were little changed after the announcement.",
        "Pre-orders open on the company's website next week.",
    ]
    return slots, facts, quote, fillers


def _transport(s: _Slots):
    name, last, he = s.person()
    city, country = s.city()
    vehicle, crashed = s.pick([("bus", "crashed"), ("train", "derailed"),
                               ("coach", "overturned"), ("ferry", "capsized"),
                               ("minibus", "crashed")])
    slots = dict(
        name=name, last=last, he=he, city=city, country=country, vehicle=vehicle,
        crashed=crashed, pax=s.rng.randint(20, 90), dead=s.rng.randint(2, 19),
        hurt=s.rng.randint(5, 50), day=s.day(), age=s.rng.randint(28, 64),
        agency=s.pick(["the transport safety board", "the accident investigation branch",
                       "the national police"]),
        place=s.pick(["a mountain pass", "a river crossing", "a busy junction",
                      "the coast road", "a level crossing"]),
    )
    facts = [
        [("At least {dead} people were killed when a {vehicle} carrying {pax} passengers "
          "{crashed} near {city} on {day}.",
          "At least {dead} killed as {vehicle} {crashed} near {city}."),
         ("A {vehicle} {crashed} at {place} outside {city} on {day}, killing {dead} people.",
          "{vehicle} {crashed} outside {city}, killing {dead}.")],
        [("A further {hurt} people were taken to hospital, some with serious injuries.",
          "{hurt} people taken to hospital."),
         ("Emergency services said {hurt} others were injured, several of them critically.",
          "{hurt} others injured, several critically.")],
        [("The driver, {name}, {age}, was among those who survived.",
          "Driver {name}, {age}, survived."),
         ("Witnesses said the {vehicle} appeared to be travelling too fast.",
          "Witnesses say the {vehicle} was going too fast.")],
        [("An investigation has been opened by {agency}.",
          "Investigation opened by {agency}."),
         ("Officials have declared a day of mourning in {city}.",
          "Day of mourning declared in {city}.")],
    ]
    quote = [("\"It was chaos, people were screaming and there was glass everywhere,\" one "
              "passenger told local television.", "")]
    fillers = [
        "Rescue teams used cutting equipment to free people trapped inside.",
        "The road remained closed for much of the day.",
        "Relatives gathered at the main hospital in {city} waiting for news.",
        "It is not yet known what caused the accident.",
        "The route has seen several serious accidents in recent years.",
        "Helicopters were used to take the most badly injured to hospital.",
        "Local people helped pull passengers from the wreckage.",
        "The operator said it was cooperating fully with investigators.",
        "Weather conditions at the time were said to be poor.",
        "Officials said the identities of the victims would be released later.",
        "Messages of sympathy were sent from across {country}.",
        "Safety campaigners have long called for improvements to the route.",
    ]
    return slots, facts, quote, fillers


def _culture(s: _Slots):
    name, last, he = s.person()
    director, dlast, _ = s.person()
    city, country = s.city()
    film = s.pick(["The Silent Shore", "Northern Lights", "A Winter Promise", "The Last Orchard",
                   "Glass Houses", "The Long Road Home", "City of Echoes", "Paper Moons"])
    slots = dict(
        name=name, last=last, he=he, director=director, dlast=dlast, city=city,
        country=country, film=film,
        role="best actor" if he == "he" else "best actress",
        award=s.pick(["the Golden Globes", "the Venice Film Festival", "the BAFTAs",
                      "the Cannes Film Festival", "the Berlin Film Festival"]),
        age=s.rng.randint(24, 78), takings=s.money(), noms=s.rng.randint(2, 11),
        weeks=s.rng.randint(2, 9), day=s.day(),
    )
    facts = [
        [("{name} has won {role} at {award} for the role in {film}.",
          "{name} wins {role} at {award} for {film}."),
         ("{name}, {age}, was named {role} at {award} on {day} for {film}.",
          "{name}, {age}, named {role} at {award}.")],
        [("The film, directed by {director}, has taken {takings} at the box office.",
          "{film} has taken {takings} at the box office."),
         ("{film} was directed by {director} and shot in {city}.",
          "{film} directed by {director} and shot in {city}.")],
        [("It received {noms} nominations in total, more than any other film this year.",
          "Film received {noms} nominations."),
         ("The film spent {weeks} weeks at the top of the charts in {country}.",
          "Film spent {weeks} weeks at number one in {country}.")],
        [("{last} thanked the crew and dedicated the award to the people of {city}.",
          "{last} dedicates award to the people of {city}."),
         ("{last} is now widely tipped to win further awards this season.",
          "{last} tipped for more awards.")],
    ]
    quote = [("\"I never thought I would be standing here,\" {last} said on stage. \"This "
              "belongs to everyone who worked on the film.\"", "")]
    fillers = [
        "The ceremony was held in front of an audience of more than a thousand guests.",
        "Critics had praised the film since its first screening last year.",
        "{dlast} spent almost five years trying to raise money for the project.",
        "Much of the film was shot on location during a harsh winter.",
        "The story is based on a novel that was published a decade ago.",
        "Fans gathered outside the venue hoping to catch a glimpse of the stars.",
        "It is the first major award of {last}'s career.",
        "Other nominees included several established Hollywood names.",
        "A sequel has not been ruled out.",
        "The film's soundtrack has also been a commercial success.",
        "Tickets for the festival screening sold out in minutes.",
        "The cast celebrated at a party in {city} after the ceremony.",
    ]
    return slots, facts, quote, fillers


GENERIC_FILLERS = [
    "The story was first reported by local media.",
    "More details are expected to emerge in the coming days.",
    "It comes at a time of growing public concern about the issue.",
    "The news was widely shared on social media within hours.",
    "Officials declined to comment further when contacted on {day}.",
    "A statement is expected to be issued later in the week.",
    "Similar cases have been reported in other parts of {country} in recent years.",
    "People in {city} reacted with a mixture of surprise and concern.",
    "It is not clear how long the situation will last.",
    "Those involved have been asked not to speak to the media.",
]

CATEGORIES: dict[str, Category] = {
    "politics": _politics, "sport": _sport, "business": _business, "weather": _weather,
    "crime": _crime, "science": _science, "health": _health, "technology": _technology,
    "transport": _transport, "culture": _culture,
}

_SLOT = re.compile(r"\{(\w+)\}")


def _fill(template: str, slots: dict) -> str:
    text = _SLOT.sub(lambda m: str(slots[m.group(1)]), template)
    return text[0].upper() + text[1:]


def _words(paragraphs: list[list[str]]) -> int:
    return sum(len(sentence.split()) for p in paragraphs for sentence in p)


def generate(seed: int) -> Article:
    """The article of ``seed``: same seed, same article, on any machine."""
    rng = random.Random(seed)
    category = sorted(CATEGORIES)[rng.randrange(len(CATEGORIES))]
    s = _Slots(rng)
    slots, facts, quote, fillers = CATEGORIES[category](s)
    slots.setdefault("day", s.day())
    slots.setdefault("city", s.city()[0])
    slots.setdefault("country", s.city()[1])

    # Three key facts always, the fourth in half the articles: 3 or 4 highlights.
    n_facts = 4 if rng.random() < 0.5 else 3
    chosen = [s.pick(options) for options in facts[:n_facts]]
    keys = [_fill(article, slots) for article, _ in chosen]
    highlights = [_fill(highlight, slots) for _, highlight in chosen]

    pool = fillers + GENERIC_FILLERS
    order = list(range(len(pool)))
    rng.shuffle(order)
    spare = iter(_fill(pool[i], slots) for i in order)
    target = rng.randint(150, 350)

    # The key facts lead their paragraphs in order, as a news story leads with what matters;
    # the quote comes after the second. Fillers follow a key fact or form paragraphs of their own.
    paragraphs: list[list[str]] = []
    for i, key in enumerate(keys):
        paragraphs.append([key])
        if i == 1:
            paragraphs.append([_fill(quote[0][0], slots)])
    for paragraph in paragraphs[1:]:
        if _words(paragraphs) < target and rng.random() < 0.5:
            paragraph.append(next(spare, ""))
    for extra in spare:
        if _words(paragraphs) >= target:
            break
        if rng.random() < 0.5 and len(paragraphs[-1]) < 3 and paragraphs[-1] is not paragraphs[0]:
            paragraphs[-1].append(extra)
        else:
            paragraphs.append([extra])

    if rng.random() < 0.4:
        dateline = f"{slots['city'].upper()} (CNN) -- " if rng.random() < 0.5 else "(CNN) -- "
        paragraphs[0][0] = dateline + paragraphs[0][0]
    # CNN/DailyMail's articles run their paragraphs together on one line; so do these.
    text = " ".join(" ".join(s for s in p if s) for p in paragraphs)
    return Article(seed, category, text, "\n".join(highlights))


def articles(start: int, count: int) -> Iterator[Article]:
    """``count`` articles from the seeds ``start, start + 1, ...``."""
    for seed in range(start, start + count):
        yield generate(seed)
