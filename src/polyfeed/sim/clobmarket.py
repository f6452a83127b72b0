"""The CLOB's own market document, ``GET /markets/{condition_id}`` (spec 8.1), for the local exchange.

Not Gamma's market (:mod:`polyfeed.sim.gamma`): the CLOB writes snake_case keys, the tick and minimum
size as JSON numbers, and the outcomes as ``tokens[{token_id, outcome, price, winner}]``, as in the real
capture ``fixtures/polymarket/rest/market.json``. py-clob-client's order path reads
``minimum_tick_size``, ``neg_risk`` and ``tokens`` from it.
"""

from __future__ import annotations

import hashlib
from decimal import Decimal
from typing import Any

from polyfeed.sim.engine import Exchange, SimMarket
from polyfeed.sim.gamma import end_date
from polyfeed.sim.numbers import SCALE, price_text

__all__ = ["clob_market_document", "find_market"]


def find_market(exchange: Exchange, condition_id: str) -> tuple[SimMarket, bool] | None:
    """The market with this condition id and whether it has resolved, or ``None``.

    Resolved markets are still found: the CLOB keeps serving them, closed, with the winner marked.
    """
    market = exchange.by_condition.get(condition_id)
    return None if market is None else (market, market.resolved_at_ms is not None)


def _number(text: str) -> int | float:
    """``"5"`` -> ``5`` and ``"0.01"`` -> ``0.01``: the CLOB writes these as JSON numbers (fixture)."""
    value = Decimal(text)
    return int(value) if value == value.to_integral_value() else float(value)


def _token_price(exchange: Exchange, asset: str) -> float:
    """The token's midpoint (the venue's ``price`` here tracks the market), else its last trade, else 0.5."""
    market = exchange.by_asset[asset]
    bid_key, ask_key = market.best_bid_key, market.best_ask_key  # YES terms, no book drawn for them
    if bid_key > 0 and ask_key < SCALE:
        if asset == market.no:  # the NO token's book mirrors the YES one's (spec 4.2)
            bid_key, ask_key = SCALE - ask_key, SCALE - bid_key
        return round((float(price_text(bid_key)) + float(price_text(ask_key))) / 2, 4)
    return float(market.last_trade_price) if market.last_trade_price else 0.5


def clob_market_document(exchange: Exchange, market: SimMarket, *, resolved: bool) -> dict[str, Any]:
    """One market as the CLOB's ``GET /markets/{condition_id}`` returns it.

    Args:
        exchange: the exchange holding the market.
        market: the market.
        resolved: whether it has resolved (closed, not accepting orders, ``winner`` set).
    """
    if resolved:
        yes_wins = market.yes_wins  # the rule its market_resolved was decided by
        prices = {market.yes: 1.0 if yes_wins else 0.0, market.no: 0.0 if yes_wins else 1.0}
        winners = {market.yes: yes_wins, market.no: not yes_wins}
    else:
        prices = {asset: _token_price(exchange, asset) for asset in (market.yes, market.no)}
        winners = {market.yes: False, market.no: False}
    question_id = "0x" + hashlib.sha256(f"question {market.condition_id}".encode()).hexdigest()
    return {
        "enable_order_book": not resolved,
        "active": True,  # the venue leaves closed markets active; ``closed`` is what changes
        "closed": resolved,
        "archived": False,
        "accepting_orders": not resolved,
        "accepting_order_timestamp": None,
        "minimum_order_size": _number(market.min_order_size),
        "minimum_tick_size": _number(market.tick),
        "condition_id": market.condition_id,
        "question_id": question_id,
        "question": market.question,
        "description": "A simulated market of the polyfeed local exchange.",
        "market_slug": market.slug,
        "end_date_iso": end_date(exchange, market),
        "game_start_time": None,
        "seconds_delay": 0,
        "fpmm": "",
        "maker_base_fee": 0,
        "taker_base_fee": 0,
        "notifications_enabled": False,
        "neg_risk": market.neg_risk,
        "neg_risk_market_id": question_id if market.neg_risk else "",
        "neg_risk_request_id": "",
        "icon": "",
        "image": "",
        "rewards": {"rates": None, "min_size": 0, "max_spread": 0},
        "is_50_50_outcome": False,
        "tokens": [
            {"token_id": asset, "outcome": outcome, "price": prices[asset], "winner": winners[asset]}
            for asset, outcome in ((market.yes, "Yes"), (market.no, "No"))
        ],
        "tags": ["All"],
    }
