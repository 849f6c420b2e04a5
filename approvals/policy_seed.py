"""The first published screening policy, in English and Spanish.

Legal owns the policy and changes it as new versions in the admin or the legal UI; this
module only seeds version 1 (a data migration) and is the fallback when a database has
no active version. Syntax of `terms`/`near` entries: see approvals.models.PolicyRule.
"""

from __future__ import annotations

NOT_PII = """\
1-800-555-0199
1-800-555-0142
help@northwind.example
@northwind.example
100 Harbor Street
"""

_LENDING_NEAR = """\
re:\\b(?:w/|with)\\s?an?\\s[5-8]\\d\\d\\b
re:\\b\\d{1,3}\\s?k\\b
visa
mastercard
amex
boat
boats
rv
rvs
motorcycle
duplex
land
lot
manufactured
valor
mortgage*
morgage*
mortage*
loan
loans
refi
refis
refinanc*
heloc*
home equity
car
auto
truck
vehicle
card
cards
credit
house
home
condo
fixed
arm
jumbo
fha
prestamo*
hipoteca*
tarjeta
credito
auto
coche
carro
casa
vivienda
"""

RULES: list[dict] = [
    # --- Lending ---------------------------------------------------------------------
    {
        "rule_id": "lending.product",
        "category": "lending",
        "language": "en",
        "description": "A credit product is named.",
        "terms": """\
loan
loans
loan's
mortgage*
morgage*
mortage*
morgtage*
mortagage*
mortguage*
refinanc*
refi
refis
refied
reefi
heloc*
home equity line*
home equity loan*
line of credit
lines of credit
credit line
credit lines
credit line increase
credit limit*
limit increase
cli
auto loan*
car loan*
car note
truck loan*
boat loan*
rv loan*
student loan*
personal loan*
payday loan*
installment loan*
loan mod*
loan modification*
forbearance
deferment
pre approval*
pre approved
preapprov*
pre qualif*
prequalif*
underwriting
underwriter*
closing costs
closing date
escrow
amortiz*
balloon payment*
cosign*
co sign*
co signer*
lender
lenders
lending
borrow
borrowing
financing
finance a
finance my
financed
refinance
balance transfer*
cash advance*
minimum payment*
min payment*
minimum due
interest charge*
interest charged
finance charge*
apr
aprs
annual percentage rate*
interest rate*
fixed rate*
variable rate*
adjustable rate*
rate lock*
lock my rate
lock the rate
rate and term
cash out refi
down payment*
downpayment*
monthly payment*
car payment*
house payment*
mortgage payment*
loan payment*
lower my payment*
lower my monthly
lower payments
payment deferral
skip a payment
buy now pay later
bnpl
hard pull*
hard inquiry
hard inquiries
soft pull*
credit check
credit application*
loan application*
loan officer*
mortgage officer*
loan offer*
approved for a
qualify for a
how much house
how much home
afford a house
afford a home
first time home buyer*
first time homebuyer*
homebuyer*
house hunting
repossess*
repo d
pmi
points on
buy down
buydown
buy the rate down
construction loan*
construction to perm*
payoff
payoff quote
pay off my
paid off my
pay off the loan
prepayment penalty
lien
lien release
jumbo
an arm
annual fee*
deferred interest
promotional financing
special financing
no interest if paid
charged interest
charging me interest
charging interest
paying interest
statement balance
grace period
higher limit
raise the limit
raise my limit
limit raised
credit history
credit score needed
credit score to qualify
authorized user
secured card*
starter card
build credit
building credit
credit builder
fico
pull my credit
pulled my credit
ran my credit
credit pull
qualify me
qualify for
approved for
get approved
1098
mortgage interest statement
business credit card*
business loan*
business line
personal guarantee
sba
equity in my
equity in the house
cash out
lend
lends
adverse action
decision on your application
credit decision
current rates
today s rates
""",
    },
    {
        "rule_id": "lending.product.es",
        "category": "lending",
        "language": "es",
        "description": "Un producto de crédito.",
        "terms": """\
prestamo*
hipoteca*
hipotecari*
refinanci*
credito hipotecario
credito automotriz
credito de auto
credito personal
credito de nomina
credito para
linea de credito
limite de credito
tasa de interes
tasas de interes
tasa fija
tasa variable
interes anual
intereses
pago minimo
pago mensual
pagos mensuales
mensualidad*
enganche
pago inicial
financiamiento
financiar
financiado
cat anual
me aprobaron el credito
aprobacion de credito
solicitud de credito
buro de credito
puntaje de credito
historial de credito
historial crediticio
pre aprobacion
preaprobacion
pre aprobado
preaprobado
cuota anual
""",
    },
    {
        "rule_id": "lending.rate_near_credit",
        "category": "lending",
        "kind": "proximity",
        "description": "A rate, a percentage or a payment near a credit product.",
        "terms": """\
rate
rates
rating
interest
tasa
tasas
payment
payments
pago
pagos
fee
fees
late fee
due date
autopay
statement
balance
points
finance
financing
prestar
prestan
presta
re:\\d{1,2}(?:[.,]\\d{1,3})?\\s?%
re:\\b\\d{1,2}(?:\\.\\d{1,3}|,\\d{1,2})\\b
""",
        "near": _LENDING_NEAR,
        "distance": 6,
    },
    {
        "rule_id": "lending.credit_decision",
        "category": "lending",
        "kind": "proximity",
        "description": "A credit decision or application is discussed.",
        "terms": """\
denied
deny
denial
rejected
turned down
approved
approval
apply
applied
applying
application
qualify
qualified
limit
increase
apr
interest
negado
negaron
rechazaron
rechazado
aprobado
aprobaron
aprueben
aprobar
solicite
solicitar
""",
        "near": """\
card
credit card
credit
loan
mortgage*
heloc*
line
tarjeta
credito
prestamo*
hipoteca*
""",
        "distance": 5,
    },
    {
        "rule_id": "lending.home_purchase",
        "category": "lending",
        "kind": "proximity",
        "description": "Buying a home: what can be afforded or qualified for.",
        "terms": """\
afford
doable
saved
qualify
budget
income
pre approved
""",
        "near": """\
house
home
condo
duplex
listed
listing
purchase price
casa
""",
        "distance": 8,
    },
    {
        "rule_id": "lending.term_structure",
        "category": "lending",
        "kind": "pattern",
        "description": "A loan term is named (a 30-year fixed, a 5/1 ARM, 72 months).",
        "terms": """\
\\b\\d{1,2}\\s?-?\\s?(?:yr|year|years|ano|anos)\\s?-?\\s?(?:fixed|arm|term|fija)\\b
\\b\\d/1\\s?arm\\b
\\b(?:36|48|60|72|84)\\s?(?:mo|months|month|meses)\\b
\\b(?:10|15|20|30)\\s?(?:or|vs\\.?|versus|o)\\s?(?:10|15|20|30)\\b
\\b(?:put|putting|poner)\\s(?:[$]?\\d[\\d,.]*\\s?k?|\\d+(?:\\.\\d+)?\\s?%)\\s?down\\b
\\b\\d{1,2}(?:\\.\\d+)?\\s?%\\s?down\\b
[$]\\d[\\d,.]*k?\\s(?:credit\\s)?limit\\b
""",
    },
    {
        "rule_id": "lending.quoted_payment",
        "category": "lending",
        "kind": "pattern",
        "description": "A payment amount is quoted.",
        "terms": """\
[$€£]\\s?\\d[\\d,]*(?:\\.\\d{2})?\\s?(?:/|per|a|each)\\s?(?:mo|month|week|wk|biweekly|year|yr)\\b
""",
    },
    {
        "rule_id": "lending.quoted_rate",
        "category": "lending",
        "kind": "pattern",
        "applies_to": "draft",
        "description": "Our draft quotes a percentage (a rate).",
        "terms": """\
\\b\\d{1,2}(?:[.,]\\d{1,3})?\\s?%
""",
    },
    {
        "rule_id": "lending.not_lending",
        "category": "lending",
        "kind": "exclusion",
        "description": "Senses that are not about credit.",
        "terms": """\
interest in
interested
interesting
interests
of interest
rate my
rate us
rate this
rate the
rate your
rated
rating app
exchange rate*
savings rate*
savings account rate*
savings apy
apy
annual percentage yield
cd rate*
certificate rate*
high yield
money market rate*
conversion rate*
heart rate*
success rate*
hourly rate*
tipo de cambio
tasa de ahorro
debit card*
debit
deposit limit*
zelle limit*
atm limit*
transfer limit*
daily limit*
spending limit*
withdrawal limit*
an arm and a leg
re:\\blend\\s(?:me|you|him|her|them|us)\\b
re:\\bme\\s(?:prestas|prestan|presta)\\s(?:tu|su)\\b
re:\\bloan(?:ed)?\\s(?:me|you|him|her|them|us)\\s(?:a|an|the|my|your|his|her|their|our|some)\\b
re:\\b\\d{1,3}(?:[.,]\\d{1,3})?\\s?%\\s(?:off|of|sure|chance|battery|satisfied)\\b
re:\\b\\d{1,3}(?:[.,]\\d{1,3})?\\s?%\\s(?:cashback|cash back|apy|discount|descuento)\\b
re:\\b(?:battery|bateria)\\s(?:at|en|is)?\\s?\\d{1,3}\\s?%
""",
    },
    # --- Deposit advertising (Truth in Savings) -------------------------------------
    {
        "rule_id": "deposit.yield",
        "category": "deposit",
        "description": "A deposit yield or bonus (Reg DD advertising rules apply to our reply).",
        "terms": """\
apy
annual percentage yield
savings rate*
cd rate*
certificate of deposit
high yield
yield
bonus
sign up bonus
welcome bonus
rendimiento
tasa de ahorro
bono
""",
    },
    {
        "rule_id": "deposit.not_deposit",
        "category": "deposit",
        "kind": "exclusion",
        "description": "Bonus in senses that are not deposit advertising.",
        "terms": """\
bonus points
bonus miles
""",
    },
    # --- Fair lending ----------------------------------------------------------------
    {
        "rule_id": "fair_lending.prohibited_basis",
        "category": "fair_lending",
        "kind": "proximity",
        "description": "A credit decision tied to a prohibited basis (ECOA / Fair Housing Act).",
        "terms": """\
denied
deny
rejected
turned down
approved
approve
qualify
redlin*
discriminat*
negaron
rechazaron
por ser
""",
        "near": """\
race
black
white people
hispanic
latino
latina
latinx
asian
native
woman
women
female
pregnant
pregnancy
maternity
disabled
disability
wheelchair
age
elderly
senior
married
unmarried
single mom
single mother
divorced
religion
muslim
jewish
christian
immigrant*
national origin
accent
welfare
public assistance
ssi
food stamps
zip code
neighborhood
mujer
embarazada
discapacidad
edad
inmigrante*
religion
""",
        "distance": 8,
    },
    {
        "rule_id": "fair_lending.redlining",
        "category": "fair_lending",
        "description": "Discrimination in credit named outright.",
        "terms": """\
redlining
redlined
lending discrimination
discriminatory lending
""",
    },
    # --- Complaints to regulators and lawyers ----------------------------------------
    {
        "rule_id": "complaint.regulator",
        "category": "complaint",
        "description": "A regulator, a lawyer or legal action is named.",
        "terms": """\
cfpb
consumer financial protection bureau
occ
comptroller of the currency
fdic
federal reserve complaint
attorney general
file a complaint
filing a complaint
filed a complaint
formal complaint
bbb
better business bureau
lawyer*
attorney*
lawsuit*
sue you
sue the bank
going to sue
suing
sued
class action
legal action
small claims
discriminat*
regulator*
abogad*
demanda*
queja formal
condusef
profeco
""",
    },
    # --- Fraud and security -----------------------------------------------------------
    {
        "rule_id": "fraud.security",
        "category": "fraud",
        "description": "Fraud, theft or a compromised account.",
        "terms": """\
fraud*
scam*
scammer*
stolen
stole
hacked
hacker*
phish*
unauthorized
unauthorised
identity theft
locked out
account locked
skimmer*
compromised
didn t make
did not make
not me
fake charge*
zelle scam
fraude*
estafa*
robo
robaron
hackearon
suplantacion
""",
    },
    # --- UDAAP wording in our drafts ---------------------------------------------------
    {
        "rule_id": "udaap.absolute_claims",
        "category": "udaap",
        "applies_to": "draft",
        "description": "Absolute or 'free' claims that are unfair or deceptive if any fee "
        "or condition applies (UDAAP).",
        "terms": """\
guarantee
guaranteed
guarantees
risk free
free
no fees
no fee
zero fees
no hidden fees
no cost
no charge
at no cost
everyone qualifies
anyone qualifies
instant approval
100 % approval
lowest rate*
best rate*
garantizado
garantizada
gratis
sin comisiones
sin costo
libre de riesgo
""",
    },
    {
        "rule_id": "udaap.not_claims",
        "category": "udaap",
        "kind": "exclusion",
        "applies_to": "draft",
        "description": "Everyday uses of 'free' that claim nothing.",
        "terms": """\
feel free
toll free
free to
free of charge to call
hands free
fraud free
""",
    },
]
