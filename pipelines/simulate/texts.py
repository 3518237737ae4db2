"""Customer messages and agent notes for every conduct category, with labelled risk spans.

A message is assembled from a channel opener, a context sentence, one or two risk phrases of its
category (whose character offsets become the labelled spans) and a closer. Phrases are many per
category and carry slots, so wording varies far beyond one template per class; neutral messages
share vocabulary (fees, complaints, cards) with the risky ones so that keywords alone do not
separate the classes.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

NEUTRAL = "none"

RISK_PHRASES: dict[str, list[str]] = {
    "conduct.vulnerable_customer": [
        "I was recently diagnosed with {illness} and I'm struggling to keep on top of things",
        "since my husband passed away last {month} I can't cope with the paperwork",
        "my mum has dementia and I look after her banking now",
        "I have a learning disability and the letters confuse me",
        "I've just lost my job and my mental health is really bad at the moment",
        "I am partially sighted and can't read the small print on your forms",
        "I'm going through a bereavement and everything feels overwhelming",
        "I'm in hospital for {days} more days and can't get to a branch",
        "English is not my first language so I did not understand what I signed",
        "I've been feeling very anxious and depressed and I can't think straight about money",
    ],
    "conduct.unclear_communication": [
        "the letter you sent makes no sense to me",
        "nobody explained that the rate would change after {days} days",
        "your terms are so confusing I still don't know what I agreed to",
        "the statement doesn't say what the {amount} charge is for",
        "I was never told about the early repayment charge on my {product}",
        "the jargon in the email about my {product} is impossible to follow",
        "it wasn't clear that the promotional rate ended in {month}",
        "the app shows one balance and the letter shows another, which is right?",
        "nobody made it clear what would happen when the fixed term ended",
    ],
    "conduct.unsuitable_product": [
        "I was sold a {product} I didn't need",
        "the adviser pushed me into a {product} even though I told him I'm retired",
        "I was pressured into taking out insurance with my loan",
        "they upgraded me to a premium account without asking if it suited me",
        "I'm a student and somehow ended up with a {product} with a huge limit",
        "the investment was far too risky for someone with my savings",
        "I only wanted a basic account but was talked into a packaged one",
        "I was told the {product} was the only option, which was not true",
        "the salesperson said I had to take the protection policy to get the loan",
    ],
    "conduct.price_and_value": [
        "I'm being charged {amount} a month for an account that gives me nothing",
        "the overdraft interest is extortionate compared to other banks",
        "why is a loyal customer paying more than new customers for the same {product}",
        "the fees on my {product} went up again without any improvement",
        "I paid a {amount} fee for a payment that took three days",
        "your exchange rate markup is hidden and far too high",
        "the {product} premium doubled at renewal and nobody can explain why",
        "this packaged account costs more than the benefits are worth",
    ],
    "conduct.barriers_to_support": [
        "I've been on hold for over {hours} hours and nobody answers",
        "I can't close my account online and the branch is shut",
        "every time I call I get cut off and have to start again",
        "the chatbot keeps going round in circles and won't let me speak to a person",
        "I've asked {times} times to cancel and it still hasn't happened",
        "you make it impossible to switch my {product} to another provider",
        "nobody phones back even though I was promised a call within a day",
        "the only way to cancel is by letter, which is ridiculous",
    ],
    "conduct.complaint_mishandling": [
        "I complained {weeks} weeks ago and have heard nothing",
        "my complaint was closed without anyone contacting me",
        "I want to escalate this to the Financial Ombudsman",
        "you keep losing my complaint reference and asking me to start over",
        "the final response letter ignored the points I raised",
        "I was promised compensation of {amount} and it never arrived",
        "this is the {times} time I've complained about the same issue",
        "no one has acknowledged my formal complaint",
    ],
    "conduct.financial_difficulty": [
        "I can't afford my {product} repayments this month",
        "I'm behind on my mortgage and I'm scared of losing the house",
        "I've had to choose between paying the loan and buying food",
        "I'm using my overdraft just to pay the rent",
        "I've missed {times} payments and the charges keep piling up",
        "I need a payment holiday, my income has dropped by half",
        "the debt collectors keep calling and I don't know what to do",
        "I'm relying on credit cards to get to the end of the month",
    ],
    "conduct.scam_report": [
        "I think I've been scammed, someone called pretending to be from the bank",
        "I sent {amount} to what I thought was my solicitor but the account was fake",
        "there are payments on my card I didn't make",
        "a man on the phone told me to move my savings to a safe account",
        "I got a text with a link and now money is missing from my account",
        "someone has taken over my online banking and changed my details",
        "I paid for a {item} online and the seller disappeared",
        "I was tricked into sharing a one-time passcode",
        "I don't recognise the transaction of {amount} from yesterday",
    ],
    "conduct.data_misuse": [
        "I never agreed to you sharing my data with marketing partners",
        "I received someone else's statement in the post",
        "your staff discussed my account with my ex-partner without permission",
        "I keep getting sales calls since I gave you my number",
        "I asked for a copy of my data {weeks} weeks ago and nothing has arrived",
        "my details were shown to another customer in the branch",
        "I want to know why you checked my credit file without asking me",
    ],
}

NEUTRAL_PHRASES = [
    "I'd like to update my address",
    "how do I activate my new card",
    "can you tell me the fee for an international transfer",
    "I need a copy of my last {month} statement",
    "please increase my daily contactless limit",
    "I'm travelling to {country} next week and want to let you know",
    "how long does a transfer to another bank take",
    "can I set up a standing order of {amount} in the app",
    "I want to order a replacement card, mine is worn out",
    "what are your branch opening hours on Saturday",
    "my salary will be paid in on a different date from next {month}",
    "please add my partner as a joint account holder",
    "is it possible to change my PIN online",
    "thanks for sorting out my query yesterday, all fine now",
    "I'd like to open a savings account for my daughter",
    "what documents do I need for a {product} application",
    "could you confirm my last payment of {amount} went through",
    "I want to switch to paperless statements",
    "how do I register for online banking",
    "I'd like to make a complaint about nothing in particular, just feedback that the app is good",
]

OPENERS = {
    "complaint": [
        "I am writing to complain.",
        "Formal complaint.",
        "I want to raise a complaint.",
        "Re: my account.",
        "",
    ],
    "chat": ["Hi,", "Hello there,", "hi", "Hey,", "Good morning,", ""],
    "email": ["Dear Sir or Madam,", "Hello,", "To whom it may concern,", "Hi team,"],
    "call_note": ["Customer called:", "Call summary -", "Agent note:", "Inbound call."],
}
CONTEXT = [
    "I've banked with you for {years} years.",
    "This is about my {product}.",
    "I spoke to someone on {day} about this.",
    "My account ends in {digits}.",
    "",
    "",
]
CLOSERS = {
    "complaint": ["Please respond urgently.", "I expect a proper reply.", "Regards.", ""],
    "chat": ["thanks", "can you help?", "please help", ""],
    "email": ["Kind regards.", "Thank you.", "Best wishes.", ""],
    "call_note": ["Advised to call back.", "Logged for follow-up.", "No further action.", ""],
}
SLOTS = {
    "illness": ["cancer", "MS", "a heart condition", "depression", "long covid"],
    "month": ["January", "March", "June", "September", "November"],
    "days": ["10", "30", "90", "12", "60"],
    "hours": ["2", "3", "1.5"],
    "weeks": ["3", "6", "8", "10"],
    "times": ["three", "four", "fifth", "several"],
    "amount": ["£15", "£35", "£120", "£450", "£2,000", "£9.99"],
    "product": [
        "credit card",
        "overdraft",
        "personal loan",
        "mortgage",
        "ISA",
        "insurance policy",
        "car finance",
        "current account",
    ],
    "item": ["sofa", "car", "puppy", "laptop", "concert ticket"],
    "country": ["Spain", "France", "the US", "Portugal"],
    "years": ["5", "12", "20", "30"],
    "day": ["Monday", "Tuesday", "Friday"],
    "digits": ["1234", "9921", "0456"],
}
CHANNEL_WEIGHTS = {
    "complaint": [0.35, 0.2, 0.25, 0.2],
    NEUTRAL: [0.05, 0.55, 0.25, 0.15],
}
CHANNELS = ["complaint", "chat", "email", "call_note"]


def _fill(rng: np.random.Generator, template: str) -> str:
    out = template
    for slot, values in SLOTS.items():
        token = "{" + slot + "}"
        while token in out:
            out = out.replace(token, values[rng.integers(len(values))], 1)
    return out


def _compose(
    rng: np.random.Generator, channel: str, category: str
) -> tuple[str, list[dict[str, object]]]:
    """One message and the spans of its risk phrases."""
    parts: list[tuple[str, int]] = []  # (text, length of the risk phrase at its start or 0)
    for candidate in (_pick(rng, OPENERS[channel]), _fill(rng, _pick(rng, CONTEXT))):
        if candidate:
            parts.append((candidate, 0))
    pool = NEUTRAL_PHRASES if category == NEUTRAL else RISK_PHRASES[category]
    n_phrases = 2 if category != NEUTRAL and rng.random() < 0.3 else 1
    chosen = rng.choice(len(pool), size=min(n_phrases, len(pool)), replace=False)
    for index in chosen:
        phrase = _fill(rng, pool[index])
        phrase = phrase[0].upper() + phrase[1:] if rng.random() < 0.7 else phrase
        risk_length = len(phrase) if category != NEUTRAL else 0
        parts.append((phrase + _pick(rng, [".", "!", ".", ""]), risk_length))
    closer = _pick(rng, CLOSERS[channel])
    if closer:
        parts.append((closer, 0))

    text, spans = "", []
    for piece, risk_length in parts:
        if text:
            text += " "
        if risk_length:
            end = len(text) + risk_length
            spans.append({"start": len(text), "end": end, "text": piece[:risk_length]})
        text += piece
    return text, spans


def _pick(rng: np.random.Generator, options: list[str]) -> str:
    return options[rng.integers(len(options))]


def simulate_texts(
    rng: np.random.Generator,
    customers: pd.DataFrame,
    payments: pd.DataFrame,
    n_messages: int,
) -> pd.DataFrame:
    """Messages from customers over the simulated period; about 40% carry a conduct risk.

    Vulnerable customers write more about vulnerability and hardship; victims of account
    takeover report scams that point at the fraudulent payment.
    """
    categories = list(RISK_PHRASES)
    customer_idx = rng.integers(0, len(customers), n_messages)
    vulnerable = customers["vulnerable"].to_numpy()[customer_idx]
    risky = rng.random(n_messages) < 0.4
    category = np.where(risky, rng.choice(categories, n_messages), NEUTRAL)
    lean = vulnerable & risky & (rng.random(n_messages) < 0.5)
    category[lean] = rng.choice(
        ["conduct.vulnerable_customer", "conduct.financial_difficulty"], int(lean.sum())
    )

    first, last = payments["occurred_at"].min(), payments["occurred_at"].max()
    received = first + pd.to_timedelta(
        rng.uniform(0, (last - first).total_seconds(), n_messages), unit="s"
    )
    related = np.full(n_messages, None, dtype=object)
    customer_ids = customers["customer_id"].to_numpy()[customer_idx]
    takeovers = payments[payments["fraud_scenario"] == "account_takeover"]
    scam_rows = np.flatnonzero(category == "conduct.scam_report")
    if len(takeovers) and len(scam_rows):
        linked = scam_rows[: len(scam_rows) // 2]
        source = takeovers.sample(n=len(linked), replace=True, random_state=1)
        related[linked] = source["transaction_id"].to_numpy()
        customer_ids[linked] = source["customer_id"].to_numpy()
        later = source["occurred_at"] + pd.to_timedelta(rng.uniform(1, 72, len(linked)), unit="h")
        received = pd.Series(received)
        received.iloc[linked] = later.to_numpy()

    texts, spans, channels = [], [], []
    for cat in category:
        weights = CHANNEL_WEIGHTS[NEUTRAL if cat == NEUTRAL else "complaint"]
        channel = CHANNELS[rng.choice(4, p=weights)]
        text, found = _compose(rng, channel, cat)
        texts.append(text)
        spans.append(json.dumps(found))
        channels.append(channel)

    return pd.DataFrame(
        {
            "message_id": [f"M{i:07d}" for i in range(n_messages)],
            "received_at": pd.DatetimeIndex(received),
            "text": texts,
            "customer_id": customer_ids,
            "channel": channels,
            "related_transaction_id": related,
            "category": category,
            "risk_spans": spans,
        }
    )
