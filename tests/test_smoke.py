def test_fake_service_answers_from_the_small_article(fake_service):
    answer = fake_service.answerer.answer("How many visitors are expected at the festival?")
    assert answer.citations and "40,000" in answer.citations[0].text
