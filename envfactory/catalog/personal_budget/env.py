"""Personal budget: household accounts, categorized transactions, monthly budgets, transfers and recurring bills."""

from __future__ import annotations

import calendar
import re
from datetime import date
from typing import Literal

from pydantic import BaseModel, Field

from envfactory.env import Environment, ToolFailure

AccountType = Literal["checking", "savings", "credit_card"]
TxnKind = Literal["expense", "income", "transfer_out", "transfer_in"]
Frequency = Literal["monthly", "quarterly", "yearly"]

BILL_PAY_WINDOW_DAYS = 14
MAX_AMOUNT = 1_000_000.0
_MONTHS_PER_PERIOD = {"monthly": 1, "quarterly": 3, "yearly": 12}


# -- state ---------------------------------------------------------------------
class Household(BaseModel):
    name: str
    currency: str = "USD"


class Account(BaseModel):
    account_id: str
    name: str
    type: AccountType
    institution: str
    balance: float  # signed: a negative credit-card balance is the amount owed
    credit_limit: float | None = None
    overdraft_limit: float = 0.0
    status: Literal["open", "closed"] = "open"


class Category(BaseModel):
    category_id: str
    name: str
    kind: Literal["expense", "income"]


class Transaction(BaseModel):
    transaction_id: str
    account_id: str
    date: str
    kind: TxnKind
    amount: float
    payee: str
    category_id: str | None = None
    memo: str = ""
    transfer_id: str | None = None
    bill_id: str | None = None
    status: Literal["posted", "voided"] = "posted"


class Budget(BaseModel):
    month: str
    category_id: str
    limit: float


class Transfer(BaseModel):
    transfer_id: str
    from_account_id: str
    to_account_id: str
    amount: float
    date: str
    memo: str = ""
    out_transaction_id: str
    in_transaction_id: str


class RecurringBill(BaseModel):
    bill_id: str
    name: str
    payee: str
    account_id: str
    category_id: str
    amount: float
    frequency: Frequency
    next_due_date: str
    active: bool = True


class State(BaseModel):
    today: str
    household: Household
    accounts: dict[str, Account]
    categories: dict[str, Category]
    transactions: dict[str, Transaction]
    budgets: dict[str, Budget] = Field(default_factory=dict)
    transfers: dict[str, Transfer] = Field(default_factory=dict)
    recurring_bills: dict[str, RecurringBill] = Field(default_factory=dict)
    next_transaction_number: int = 1
    next_transfer_number: int = 1
    next_bill_number: int = 1


# -- outputs -------------------------------------------------------------------
class AccountSummary(BaseModel):
    account_id: str
    name: str
    type: AccountType
    balance: float
    status: str


class AccountDetail(BaseModel):
    account_id: str
    name: str
    type: AccountType
    institution: str
    balance: float
    credit_limit: float | None
    overdraft_limit: float
    available: float
    status: str
    posted_transactions: int


class TransactionList(BaseModel):
    count: int
    total_amount: float
    transactions: list[Transaction]


class BudgetResult(BaseModel):
    month: str
    category_id: str
    limit: float
    previous_limit: float | None
    spent: float
    remaining: float


class CategoryLine(BaseModel):
    category_id: str
    name: str
    spent: float
    budget: float | None
    remaining: float | None
    over_budget: bool


class SpendingReport(BaseModel):
    month: str
    total_income: float
    total_expenses: float
    net: float
    categories: list[CategoryLine]


class BillPayment(BaseModel):
    bill_id: str
    transaction_id: str
    account_id: str
    amount: float
    paid_date: str
    covered_due_date: str
    next_due_date: str


# -- helpers -------------------------------------------------------------------
def _parse_date(value: str, field: str) -> date:
    try:
        return date.fromisoformat(value)
    except (TypeError, ValueError):
        raise ToolFailure(f"{field} must be an ISO date (YYYY-MM-DD), got {value!r}") from None


def _check_month(value: str) -> str:
    if not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", value or ""):
        raise ToolFailure(f"month must look like YYYY-MM, got {value!r}")
    return value


def _add_months(d: date, months: int) -> date:
    y, m = divmod(d.month - 1 + months, 12)
    year, month = d.year + y, m + 1
    return date(year, month, min(d.day, calendar.monthrange(year, month)[1]))


def _money(value: float) -> float:
    return round(value + 0.0, 2)


def _check_amount(value: float, field: str = "amount", allow_zero: bool = False) -> float:
    value = _money(value) if abs(value) <= MAX_AMOUNT else value
    if value < 0 or (value == 0 and not allow_zero):
        raise ToolFailure(f"{field} must be {'0 or more' if allow_zero else 'positive'}")
    if value > MAX_AMOUNT:
        raise ToolFailure(f"{field} must not exceed {MAX_AMOUNT:,.0f}")
    return value


class PersonalBudget(Environment):
    """A household budgeting app: checking, savings and credit-card accounts with
    categorized transactions, monthly per-category budgets, transfers between the
    household's own accounts, recurring bills and a monthly spending report.
    Balances are signed; a credit card's negative balance is the amount owed."""

    name = "personal_budget"
    domain = "finance"
    State = State

    # -- private helpers -------------------------------------------------------
    def _account(self, account_id: str, must_be_open: bool = False) -> dict:
        acc = self.state["accounts"].get(account_id)
        if acc is None:
            raise ToolFailure(f"account {account_id} not found")
        if must_be_open and acc["status"] != "open":
            raise ToolFailure(f"account {account_id} is closed")
        return acc

    def _category(self, category_id: str) -> dict:
        cat = self.state["categories"].get(category_id)
        if cat is None:
            raise ToolFailure(f"category {category_id} not found; use list_categories")
        return cat

    def _transaction(self, transaction_id: str) -> dict:
        txn = self.state["transactions"].get(transaction_id)
        if txn is None:
            raise ToolFailure(f"transaction {transaction_id} not found")
        return txn

    def _bill(self, bill_id: str) -> dict:
        bill = self.state["recurring_bills"].get(bill_id)
        if bill is None:
            raise ToolFailure(f"recurring bill {bill_id} not found")
        return bill

    def _available(self, acc: dict) -> float:
        if acc["type"] == "credit_card":
            return _money((acc["credit_limit"] or 0.0) + acc["balance"])
        return _money(acc["balance"] + acc["overdraft_limit"])

    def _apply(self, acc: dict, delta: float) -> None:
        """Change a balance, enforcing overdraft and credit limits."""
        new = _money(acc["balance"] + delta)
        if acc["type"] == "credit_card":
            if new < -(acc["credit_limit"] or 0.0) - 1e-9:
                raise ToolFailure(f"{acc['account_id']} would exceed its credit limit of {acc['credit_limit']:.2f} "
                                  f"(available credit {self._available(acc):.2f})")
            if new > 1e-9:
                raise ToolFailure(f"{acc['account_id']} would end with a positive balance of {new:.2f}; "
                                  f"only {-acc['balance']:.2f} is owed")
        elif new < -acc["overdraft_limit"] - 1e-9:
            raise ToolFailure(f"insufficient funds in {acc['account_id']}: available {self._available(acc):.2f}, "
                              f"needed {-delta:.2f}")
        acc["balance"] = new

    def _new_txn(self, **fields) -> dict:
        tid = f"TXN-{self.state['next_transaction_number']:05d}"
        self.state["next_transaction_number"] += 1
        txn = {"transaction_id": tid, "account_id": fields["account_id"], "date": fields["date"],
               "kind": fields["kind"], "amount": fields["amount"], "payee": fields["payee"],
               "category_id": fields.get("category_id"), "memo": fields.get("memo") or "",
               "transfer_id": fields.get("transfer_id"), "bill_id": fields.get("bill_id"), "status": "posted"}
        self.state["transactions"][tid] = txn
        return txn

    def _spent(self, month: str, category_id: str) -> float:
        return _money(sum(t["amount"] for t in self.state["transactions"].values()
                          if t["status"] == "posted" and t["kind"] == "expense"
                          and t["category_id"] == category_id and t["date"][:7] == month))

    # -- accounts and categories -------------------------------------------
    def list_accounts(self, include_closed: bool = False) -> list[AccountSummary]:
        """List the household's accounts with their current balances.

        Args:
            include_closed: Also list closed accounts.
        """
        return [{"account_id": a["account_id"], "name": a["name"], "type": a["type"],
                 "balance": a["balance"], "status": a["status"]}
                for a in sorted(self.state["accounts"].values(), key=lambda a: a["account_id"])
                if include_closed or a["status"] == "open"]

    def get_account(self, account_id: str) -> AccountDetail:
        """Full details of one account, including available funds (cash plus overdraft, or unused credit).

        Args:
            account_id: Account identifier, e.g. "ACC-CHK-01".
        """
        a = self._account(account_id)
        posted = sum(1 for t in self.state["transactions"].values()
                     if t["account_id"] == account_id and t["status"] == "posted")
        return {"account_id": a["account_id"], "name": a["name"], "type": a["type"],
                "institution": a["institution"], "balance": a["balance"], "credit_limit": a["credit_limit"],
                "overdraft_limit": a["overdraft_limit"], "available": self._available(a),
                "status": a["status"], "posted_transactions": posted}

    def list_categories(self, kind: Literal["expense", "income"] | None = None) -> list[Category]:
        """List spending and income categories.

        Args:
            kind: Only categories of this kind (expense or income).
        """
        return [c for c in sorted(self.state["categories"].values(), key=lambda c: c["category_id"])
                if kind is None or c["kind"] == kind]

    # -- transactions --------------------------------------------------------
    def search_transactions(self, account_id: str | None = None, category_id: str | None = None,
                            month: str | None = None, payee: str | None = None, kind: TxnKind | None = None,
                            include_voided: bool = False) -> TransactionList:
        """Find transactions matching all given filters, oldest first, with their count and summed amount.

        Args:
            account_id: Only transactions of this account.
            category_id: Only transactions in this category.
            month: Only transactions dated in this month, YYYY-MM.
            payee: Case-insensitive substring of the payee name.
            kind: Only this kind: expense, income, transfer_out or transfer_in.
            include_voided: Also return voided transactions.
        """
        if account_id is not None:
            self._account(account_id)
        if category_id is not None:
            self._category(category_id)
        if month is not None:
            _check_month(month)
        found = [t for t in self.state["transactions"].values()
                 if (account_id is None or t["account_id"] == account_id)
                 and (category_id is None or t["category_id"] == category_id)
                 and (month is None or t["date"][:7] == month)
                 and (payee is None or payee.lower() in t["payee"].lower())
                 and (kind is None or t["kind"] == kind)
                 and (include_voided or t["status"] == "posted")]
        found.sort(key=lambda t: (t["date"], t["transaction_id"]))
        return {"count": len(found), "total_amount": _money(sum(t["amount"] for t in found)), "transactions": found}

    def get_transaction(self, transaction_id: str) -> Transaction:
        """Details of one transaction.

        Args:
            transaction_id: Transaction identifier, e.g. "TXN-00042".
        """
        return self._transaction(transaction_id)

    def record_transaction(self, account_id: str, kind: Literal["expense", "income"], amount: float, date: str,
                           payee: str, category_id: str, memo: str | None = None) -> Transaction:
        """Record a purchase (expense) or money received (income) on an account and update its balance.
        Expenses are not allowed on savings accounts; the category's kind must match the transaction kind.

        Args:
            account_id: Account identifier from list_accounts.
            kind: expense or income.
            amount: Positive amount in the household currency (at most 1,000,000).
            date: Transaction date, YYYY-MM-DD, not after today.
            payee: Merchant or payer name.
            category_id: Category identifier from list_categories, of the same kind.
            memo: Optional note.
        """
        acc = self._account(account_id, must_be_open=True)
        amount = _check_amount(amount)
        when = _parse_date(date, "date")
        if when > _parse_date(self.state["today"], "today"):
            raise ToolFailure(f"date {date} is in the future (today is {self.state['today']})")
        if not payee.strip():
            raise ToolFailure("payee must not be empty")
        cat = self._category(category_id)
        if cat["kind"] != kind:
            raise ToolFailure(f"category {category_id} is an {cat['kind']} category, not {kind}")
        if kind == "expense" and acc["type"] == "savings":
            raise ToolFailure(f"expenses cannot be recorded on savings account {account_id}; transfer the money "
                              "to checking first")
        self._apply(acc, -amount if kind == "expense" else amount)
        return self._new_txn(account_id=account_id, date=when.isoformat(), kind=kind, amount=amount,
                             payee=payee.strip(), category_id=category_id, memo=memo)

    def recategorize_transaction(self, transaction_id: str, category_id: str) -> Transaction:
        """Move a posted expense or income transaction to another category of the same kind.

        Args:
            transaction_id: Transaction identifier.
            category_id: New category identifier.
        """
        txn = self._transaction(transaction_id)
        if txn["kind"] not in ("expense", "income"):
            raise ToolFailure(f"transaction {transaction_id} is part of a transfer and has no category")
        if txn["status"] != "posted":
            raise ToolFailure(f"transaction {transaction_id} is voided")
        cat = self._category(category_id)
        if cat["kind"] != txn["kind"]:
            raise ToolFailure(f"category {category_id} is an {cat['kind']} category; transaction {transaction_id} "
                              f"is an {txn['kind']}")
        if txn["category_id"] == category_id:
            raise ToolFailure(f"transaction {transaction_id} is already in category {category_id}")
        txn["category_id"] = category_id
        return txn

    def void_transaction(self, transaction_id: str) -> Transaction:
        """Void a posted expense or income transaction (e.g. a duplicate) and reverse its effect on the balance.
        Transfer legs and bill payments cannot be voided.

        Args:
            transaction_id: Transaction identifier.
        """
        txn = self._transaction(transaction_id)
        if txn["status"] == "voided":
            raise ToolFailure(f"transaction {transaction_id} is already voided")
        if txn["kind"] not in ("expense", "income"):
            raise ToolFailure(f"transaction {transaction_id} belongs to transfer {txn['transfer_id']} "
                              "and cannot be voided")
        if txn["bill_id"] is not None:
            raise ToolFailure(f"transaction {transaction_id} is a payment of bill {txn['bill_id']} "
                              "and cannot be voided")
        acc = self._account(txn["account_id"], must_be_open=True)
        self._apply(acc, txn["amount"] if txn["kind"] == "expense" else -txn["amount"])
        txn["status"] = "voided"
        return txn

    def transfer_funds(self, from_account_id: str, to_account_id: str, amount: float, date: str,
                       memo: str | None = None) -> Transfer:
        """Move money between two of the household's open accounts; a transfer to a credit card pays it down.
        Credit cards cannot be the source, and a card payment cannot exceed the amount owed.

        Args:
            from_account_id: Source account (checking or savings).
            to_account_id: Destination account.
            amount: Positive amount to move (at most 1,000,000).
            date: Transfer date, YYYY-MM-DD, not after today.
            memo: Optional note.
        """
        if from_account_id == to_account_id:
            raise ToolFailure("source and destination accounts must differ")
        src = self._account(from_account_id, must_be_open=True)
        dst = self._account(to_account_id, must_be_open=True)
        if src["type"] == "credit_card":
            raise ToolFailure("cash advances are not supported: a credit card cannot be the source of a transfer")
        amount = _check_amount(amount)
        when = _parse_date(date, "date")
        if when > _parse_date(self.state["today"], "today"):
            raise ToolFailure(f"date {date} is in the future (today is {self.state['today']})")
        self._apply(src, -amount)
        self._apply(dst, amount)
        trf_id = f"TRF-{self.state['next_transfer_number']:04d}"
        self.state["next_transfer_number"] += 1
        day = when.isoformat()
        out_txn = self._new_txn(account_id=from_account_id, date=day, kind="transfer_out", amount=amount,
                                payee=f"Transfer to {dst['name']}", memo=memo, transfer_id=trf_id)
        in_txn = self._new_txn(account_id=to_account_id, date=day, kind="transfer_in", amount=amount,
                               payee=f"Transfer from {src['name']}", memo=memo, transfer_id=trf_id)
        transfer = {"transfer_id": trf_id, "from_account_id": from_account_id, "to_account_id": to_account_id,
                    "amount": amount, "date": day, "memo": memo or "",
                    "out_transaction_id": out_txn["transaction_id"], "in_transaction_id": in_txn["transaction_id"]}
        self.state["transfers"][trf_id] = transfer
        return transfer

    # -- budgets and reporting ---------------------------------------------
    def set_budget(self, month: str, category_id: str, limit: float) -> BudgetResult:
        """Create or change the monthly spending limit of an expense category. Past months are closed.

        Args:
            month: Budget month, YYYY-MM, the current month or later.
            category_id: Expense category identifier.
            limit: Spending limit for the month (0 or more).
        """
        _check_month(month)
        if month < self.state["today"][:7]:
            raise ToolFailure(f"month {month} is closed; budgets can only be set from {self.state['today'][:7]} on")
        cat = self._category(category_id)
        if cat["kind"] != "expense":
            raise ToolFailure(f"category {category_id} is an income category; budgets apply to expenses")
        limit = _check_amount(limit, "limit", allow_zero=True)
        key = f"{month}:{category_id}"
        previous = self.state["budgets"].get(key)
        prev_limit = previous["limit"] if previous else None
        self.state["budgets"][key] = {"month": month, "category_id": category_id, "limit": limit}
        spent = self._spent(month, category_id)
        return {"month": month, "category_id": category_id, "limit": limit, "previous_limit": prev_limit,
                "spent": spent, "remaining": _money(limit - spent)}

    def spending_report(self, month: str) -> SpendingReport:
        """Income, expenses and per-category spending against budget for one month. Lists every expense
        category that has spending or a budget that month, by category id. Transfers are not counted.

        Args:
            month: Report month, YYYY-MM.
        """
        _check_month(month)
        posted = [t for t in self.state["transactions"].values() if t["status"] == "posted" and t["date"][:7] == month]
        income = _money(sum(t["amount"] for t in posted if t["kind"] == "income"))
        expenses = _money(sum(t["amount"] for t in posted if t["kind"] == "expense"))
        used = {t["category_id"] for t in posted if t["kind"] == "expense"}
        used |= {b["category_id"] for b in self.state["budgets"].values() if b["month"] == month}
        lines = []
        for cid in sorted(used):
            spent = self._spent(month, cid)
            budget = self.state["budgets"].get(f"{month}:{cid}")
            limit = budget["limit"] if budget else None
            lines.append({"category_id": cid, "name": self.state["categories"][cid]["name"], "spent": spent,
                          "budget": limit, "remaining": None if limit is None else _money(limit - spent),
                          "over_budget": limit is not None and spent > limit + 1e-9})
        return {"month": month, "total_income": income, "total_expenses": expenses,
                "net": _money(income - expenses), "categories": lines}

    # -- recurring bills -----------------------------------------------------
    def list_recurring_bills(self, due_before: str | None = None, include_inactive: bool = False) -> list[RecurringBill]:
        """List recurring bills by next due date.

        Args:
            due_before: Only bills whose next due date is on or before this date, YYYY-MM-DD.
            include_inactive: Also list cancelled bills.
        """
        limit = _parse_date(due_before, "due_before").isoformat() if due_before is not None else None
        bills = [b for b in self.state["recurring_bills"].values()
                 if (include_inactive or b["active"]) and (limit is None or b["next_due_date"] <= limit)]
        return sorted(bills, key=lambda b: (b["next_due_date"], b["bill_id"]))

    def add_recurring_bill(self, name: str, payee: str, account_id: str, category_id: str, amount: float,
                           frequency: Frequency, next_due_date: str) -> RecurringBill:
        """Register a new recurring bill paid from a checking or credit-card account.

        Args:
            name: Short name, e.g. "Gym membership".
            payee: Who is paid.
            account_id: Default paying account (checking or credit card).
            category_id: Expense category of the payments.
            amount: Usual amount per period, positive.
            frequency: monthly, quarterly or yearly.
            next_due_date: First due date, YYYY-MM-DD, today or later.
        """
        acc = self._account(account_id, must_be_open=True)
        if acc["type"] == "savings":
            raise ToolFailure("bills cannot be paid from a savings account")
        cat = self._category(category_id)
        if cat["kind"] != "expense":
            raise ToolFailure(f"category {category_id} is not an expense category")
        amount = _check_amount(amount)
        due = _parse_date(next_due_date, "next_due_date")
        if due < _parse_date(self.state["today"], "today"):
            raise ToolFailure(f"next_due_date {next_due_date} is in the past (today is {self.state['today']})")
        if not name.strip() or not payee.strip():
            raise ToolFailure("name and payee must not be empty")
        bid = f"BILL-{self.state['next_bill_number']:03d}"
        self.state["next_bill_number"] += 1
        bill = {"bill_id": bid, "name": name.strip(), "payee": payee.strip(), "account_id": account_id,
                "category_id": category_id, "amount": amount, "frequency": frequency,
                "next_due_date": due.isoformat(), "active": True}
        self.state["recurring_bills"][bid] = bill
        return bill

    def pay_bill(self, bill_id: str, account_id: str | None = None, amount: float | None = None) -> BillPayment:
        """Pay the current period of a recurring bill today: records an expense and advances the next due date
        by one period. Only possible from 14 days before the due date (overdue bills can always be paid).

        Args:
            bill_id: Recurring bill identifier, e.g. "BILL-004".
            account_id: Pay from this account instead of the bill's default one (checking or credit card).
            amount: Amount actually due this period if it differs from the usual amount (e.g. utilities).
        """
        bill = self._bill(bill_id)
        if not bill["active"]:
            raise ToolFailure(f"bill {bill_id} has been cancelled")
        acc = self._account(account_id or bill["account_id"], must_be_open=True)
        if acc["type"] == "savings":
            raise ToolFailure("bills cannot be paid from a savings account")
        pay = _check_amount(bill["amount"] if amount is None else amount)
        today = _parse_date(self.state["today"], "today")
        due = date.fromisoformat(bill["next_due_date"])
        if (due - today).days > BILL_PAY_WINDOW_DAYS:
            raise ToolFailure(f"bill {bill_id} is next due on {bill['next_due_date']}; it can be paid at most "
                              f"{BILL_PAY_WINDOW_DAYS} days ahead")
        self._apply(acc, -pay)
        txn = self._new_txn(account_id=acc["account_id"], date=today.isoformat(), kind="expense", amount=pay,
                            payee=bill["payee"], category_id=bill["category_id"],
                            memo=f"{bill['name']} due {bill['next_due_date']}", bill_id=bill_id)
        covered = bill["next_due_date"]
        bill["next_due_date"] = _add_months(due, _MONTHS_PER_PERIOD[bill["frequency"]]).isoformat()
        return {"bill_id": bill_id, "transaction_id": txn["transaction_id"], "account_id": acc["account_id"],
                "amount": pay, "paid_date": today.isoformat(), "covered_due_date": covered,
                "next_due_date": bill["next_due_date"]}

    def cancel_recurring_bill(self, bill_id: str) -> RecurringBill:
        """Stop tracking a recurring bill (e.g. a cancelled subscription); past payments are kept.

        Args:
            bill_id: Recurring bill identifier.
        """
        bill = self._bill(bill_id)
        if not bill["active"]:
            raise ToolFailure(f"bill {bill_id} is already cancelled")
        bill["active"] = False
        return bill
